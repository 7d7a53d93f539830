"""OAuth 2 bearer tokens of third-party agendas (RFC 6750)."""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Request

from app.auth import clients
from app.auth.principal import CLIENT, Principal
from app.auth.scopes import Scopes
from app.auth.tokens import InvalidToken, VerifierUnavailable, verifier_for
from app.db import read_transaction
from app.outcome import FhirError, Unauthorized
from app.state import AppState

log = logging.getLogger(__name__)

REALM = "fhir-agenda"


def invalid_token(description: str) -> Unauthorized:
    # Authlib spells the RFC 6750 challenge: realm, error="invalid_token", error_description.
    headers = dict(InvalidTokenError(description, realm=REALM).get_headers())
    return Unauthorized(f"Invalid bearer token: {description}",
                        headers={"WWW-Authenticate": headers["WWW-Authenticate"]})


def _scope_text(claims: dict[str, Any]) -> str:
    # RFC 8693 `scope` is a space-separated string; some servers send a list (`scp`).
    scope = claims.get("scope", claims.get("scp", ""))
    if isinstance(scope, list):
        return " ".join(item for item in scope if isinstance(item, str))
    return scope if isinstance(scope, str) else ""


def token_principal(request: Request, state: AppState) -> Principal | None:
    """The client principal of a valid bearer token; None without an Authorization header.

    Raises Unauthorized (with WWW-Authenticate) for an invalid token."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_token("expected Authorization: Bearer followed by an access token")
    try:
        claims = verifier_for(state.settings).claims(token.strip())
    except InvalidToken as exc:
        raise invalid_token(str(exc)) from exc
    except VerifierUnavailable as exc:
        log.error("Bearer token not verified: %s", exc)
        raise FhirError("The authorisation server cannot be reached to verify the token; "
                        "retry later", status=503, code="transient") from exc
    client_id = claims.get("client_id") or claims.get("sub")
    if not isinstance(client_id, str) or not client_id:
        raise invalid_token("the token names no client (client_id or sub)")
    with read_transaction(state.engine) as conn:
        registered = clients.find(conn, client_id)
    if registered is None:  # a client of an external server that we do not restrict
        return Principal(CLIENT, client_id, Scopes.parse(_scope_text(claims)))
    if registered.disabled_at is not None:
        raise invalid_token("this client has been disabled")
    return Principal(CLIENT, client_id, Scopes.parse(_scope_text(claims)),
                     practitioners=registered.practitioners,
                     organizations=registered.organizations)
