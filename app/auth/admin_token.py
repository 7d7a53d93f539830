"""The ADMIN_TOKEN bearer token that guards the operator endpoints (/admin/…, /metrics)."""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from app.state import current_state


def require_admin_token() -> Response | None:
    """None when the request carries ADMIN_TOKEN, else the refusal to answer (a before_request
    hook, or the first line of a view)."""
    token = current_state().settings.admin_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token:
        return refusal(403, "The admin endpoints are disabled: set ADMIN_TOKEN to use them")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return refusal(401, "A valid admin bearer token is required")
    return None


def refusal(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response
