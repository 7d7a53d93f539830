"""Wire app/auth into the application: authentication gate, token endpoint, the `oauth` and
`crl` commands."""

from __future__ import annotations

import logging

from flask import Flask

from app.auth.commands import oauth_group
from app.auth.crl_commands import crl_group
from app.auth.gate import install_gate
from app.auth.oauth_server import install_oauth
from app.auth.sso import install_sso
from app.config import Settings

log = logging.getLogger(__name__)


def install(app: Flask, settings: Settings) -> None:
    install_gate(app)
    install_oauth(app, settings)
    install_sso(app, settings)  # regulators' single sign-on (web pages)
    app.cli.add_command(oauth_group)
    app.cli.add_command(crl_group)
    if settings.client_ca_bundle and not (settings.development or settings.checks_revocation):
        log.warning("Client certificates are not checked for revocation: set "
                    "CLIENT_CRL_URLS and/or CLIENT_CRL_FILES (app/auth/revocation.py)")
