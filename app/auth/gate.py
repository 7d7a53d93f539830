"""Authentication of FHIR requests: who is calling, before any route runs.

Production: a SAS client certificate (mutual TLS) or an OAuth 2 bearer token; nothing else.
Development (SECURITY_PROFILE=development): every caller may do everything.
"""

from __future__ import annotations

import logging

from flask import Flask, g, request

from app.auth.bearer import token_principal
from app.auth.context import current_principal
from app.auth.mtls import certificate_principal
from app.auth.principal import Principal, development_principal
from app.outcome import Forbidden, Unauthorized
from app.state import current_state

log = logging.getLogger(__name__)

# What anyone may fetch: how to talk to us, and how to get a token.
PUBLIC_PATHS = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration"})
CHALLENGE = 'Bearer realm="fhir-agenda"'


def caller_label() -> str:
    agent = request.headers.get("User-Agent", "unknown client")[:200]
    return f"{request.remote_addr or '?'} ({agent})"


def identify() -> Principal:
    state = current_state()
    if state.settings.development:
        return development_principal(caller_label())
    try:
        principal = certificate_principal(request, state.settings)
    except Forbidden:
        # IGC-Santé certifies many software vendors: a certificate that is not SAS's does
        # not stop a third-party agenda from calling with its OAuth token.
        if "Authorization" not in request.headers:
            raise
        principal = None
    principal = principal or token_principal(request, state)
    if principal is None:
        raise Unauthorized("Authentication required: a SAS client certificate (mutual TLS) "
                           "or an OAuth 2 bearer token", headers={"WWW-Authenticate": CHALLENGE})
    return principal


def principal_of_request() -> Principal | None:
    return g.get("principal")


def _authenticate() -> None:
    if request.blueprint != "fhir" or request.path.rstrip("/") in PUBLIC_PATHS:
        return
    g.principal = identify()
    g.principal_token = current_principal.set(g.principal)


def _forget(_response_or_error: object) -> None:
    token = g.pop("principal_token", None)
    if token is not None:
        current_principal.reset(token)


def install_gate(app: Flask) -> None:
    if app.extensions["agenda"].settings.development:
        log.warning("\n%s\nSECURITY_PROFILE=development: the FHIR API is open to anyone, "
                    "with every right.\nNever run this profile with real data or on a "
                    "reachable address.\n%s", "!" * 78, "!" * 78)
    app.before_request(_authenticate)

    @app.teardown_request
    def _teardown(error: BaseException | None) -> None:
        _forget(error)

