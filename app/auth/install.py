"""Wire app/auth into the application: authentication gate, token endpoint, commands."""

from __future__ import annotations

from flask import Flask

from app.auth.commands import oauth_group
from app.auth.gate import install_gate
from app.auth.oauth_server import install_oauth
from app.config import Settings


def install(app: Flask, settings: Settings) -> None:
    install_gate(app)
    install_oauth(app, settings)
    app.cli.add_command(oauth_group)
