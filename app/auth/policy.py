"""What an authenticated principal may do: scopes per resource type, the SAS-only
interactions, and the agendas a restricted client manages.

Reads are checked by the routes before they run; writes by `AccessGuard`, inside the write
transaction, so that every path (REST, Bundle entries, conditional writes) is covered.
"""

from __future__ import annotations

from app.auth.principal import Principal
from app.auth.scopes import CREATE, DELETE, READ, SEARCH, UPDATE
from app.outcome import Forbidden

WRITE_ACTIONS = {"POST": CREATE, "PUT": UPDATE, "DELETE": DELETE}
ACTION_NAMES = {READ: "read", SEARCH: "search", CREATE: "create", UPDATE: "update",
                DELETE: "delete"}


def insufficient_scope(diagnostics: str) -> Forbidden:
    # RFC 6750 §3.1: a valid token that lacks the rights for this request.
    return Forbidden(diagnostics, headers={
        "WWW-Authenticate": 'Bearer realm="fhir-agenda", error="insufficient_scope"'})


def require(principal: Principal, resource_type: str, action: str) -> None:
    """Refuse unless the principal's scopes grant `action` on `resource_type`."""
    if principal.unchecked or principal.scopes.allows(resource_type, action):
        return
    raise insufficient_scope(
        f"{principal.describe()} may not {ACTION_NAMES.get(action, action)} "
        f"{resource_type} resources (scopes: {principal.scopes or 'none'})")


def require_sas(principal: Principal, what: str) -> None:
    """The SAS-facing interactions need SAS's client certificate (mutual TLS)."""
    if principal.unchecked or principal.is_sas:
        return
    raise Forbidden(f"{what} is reserved to the SAS platform, identified by its client "
                    "certificate (mutual TLS)")


def require_unrestricted(principal: Principal, what: str) -> None:
    if principal.restricted:
        raise Forbidden(f"{what} is not available to a client restricted to some agendas")
