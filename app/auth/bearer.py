"""OAuth 2 bearer tokens of third-party agendas."""

from __future__ import annotations

from flask import Request

from app.auth.principal import Principal
from app.state import AppState


def token_principal(request: Request, state: AppState) -> Principal | None:
    """The client principal of a valid bearer token; None without an Authorization header.

    Raises Unauthorized (with WWW-Authenticate) for an invalid token."""
    return None
