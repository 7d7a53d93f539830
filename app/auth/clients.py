"""The OAuth 2 client registry: who may get tokens from the built-in endpoint, with which
scopes, and which agendas a client (of any authorisation server) is restricted to."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import Connection, insert, select, update

from app.accounts.models import new_token, token_hash, utcnow
from app.auth.scopes import Scopes
from app.identifiers import IDNPS_SYSTEM, idnps
from app.search.engine import run_search
from app.search.query import parse_query
from app.storage.repository import Repository
from app.storage.schema import oauth_clients

GRANT_TYPE = "client_credentials"
AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class RegistrationError(ValueError):
    """A registration that names an unknown scope, practitioner or organisation."""


def narrow(requested: Scopes, allowed: Scopes) -> Scopes:
    """What both grant: `system/*.rs` ∩ `system/Slot.read` = `system/Slot.rs`."""
    return Scopes(frozenset(
        {(kind, letter) for kind, letter in requested.granted if allowed.allows(kind, letter)}
        | {(kind, letter) for kind, letter in allowed.granted if requested.allows(kind, letter)}))


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    client_id: str
    secret_hash: str
    name: str
    scope: str
    practitioners: frozenset[str]
    organizations: frozenset[str]
    created_at: datetime
    disabled_at: datetime | None

    @property
    def restricted(self) -> bool:
        return bool(self.practitioners or self.organizations)

    # -- what Authlib's authorisation server asks a client --------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(token_hash(client_secret), self.secret_hash)

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Requested ∩ allowed, each requested scope kept as written when fully allowed;
        everything allowed when none is requested; None (invalid_scope) when nothing is."""
        allowed = Scopes.parse(self.scope)
        if not scope:
            return self.scope
        granted = []
        for item in scope.split():
            asked = Scopes.parse(item)
            kept = narrow(asked, allowed)
            if kept.granted:
                granted.append(item if kept == asked else str(kept))
        return " ".join(dict.fromkeys(granted)) or None


def _ids(raw: str) -> frozenset[str]:
    return frozenset(raw.split())


def _client(row: object) -> RegisteredClient:
    r = row._mapping  # type: ignore[attr-defined]
    return RegisteredClient(r["client_id"], r["secret_hash"], r["name"], r["scope"],
                            _ids(r["practitioners"]), _ids(r["organizations"]),
                            r["created_at"], r["disabled_at"])


def find(conn: Connection, client_id: str) -> RegisteredClient | None:
    row = conn.execute(select(oauth_clients)
                       .where(oauth_clients.c.client_id == client_id)).first()
    return _client(row) if row else None


def listing(conn: Connection) -> list[RegisteredClient]:
    rows = conn.execute(select(oauth_clients).order_by(oauth_clients.c.created_at,
                                                       oauth_clients.c.client_id))
    return [_client(row) for row in rows]


def disable(conn: Connection, client_id: str) -> bool:
    """Refuse the client's token requests and its tokens still in flight."""
    result = conn.execute(update(oauth_clients)
                          .where(oauth_clients.c.client_id == client_id,
                                 oauth_clients.c.disabled_at.is_(None))
                          .values(disabled_at=utcnow()))
    return bool(result.rowcount)


def register(repo: Repository, name: str, scope: str, practitioners: Iterable[str] = (),
             organizations: Iterable[str] = ()) -> tuple[RegisteredClient, str]:
    """Record a client; returns it with its secret, which is shown once and never kept."""
    unknown = [item for item in scope.split() if not Scopes.parse(item).granted]
    if unknown or not scope.split():
        raise RegistrationError(f"Unknown or missing scopes: {' '.join(unknown) or '(none)'}"
                                " (expected e.g. system/Slot.rs system/Appointment.cruds)")
    practitioner_ids = sorted({resolve_practitioner(repo, given) for given in practitioners})
    organization_ids = sorted(set(organizations))
    for organization_id in organization_ids:
        if not repo.exists("Organization", organization_id):
            raise RegistrationError(f"Organization/{organization_id} is not known")
    secret = new_token()
    values = {"client_id": f"agenda-{new_token()[:16]}", "secret_hash": token_hash(secret),
              "name": name, "scope": " ".join(dict.fromkeys(scope.split())),
              "practitioners": " ".join(practitioner_ids),
              "organizations": " ".join(organization_ids), "created_at": utcnow(),
              "disabled_at": None}
    repo.conn.execute(insert(oauth_clients).values(**values))
    return RegisteredClient(**{**values, "practitioners": frozenset(practitioner_ids),
                               "organizations": frozenset(organization_ids)}), secret


def resolve_practitioner(repo: Repository, given: str) -> str:
    """A Practitioner logical id, or the id of the Practitioner with this RPPS/ADELI number."""
    if repo.exists("Practitioner", given):
        return given
    query = parse_query("Practitioner", [("identifier", f"{IDNPS_SYSTEM}|{idnps(given)}")])
    found = {stored.resource_id for stored in run_search(repo, query).matches}
    if len(found) != 1:
        problem = "is not known" if not found else f"matches {len(found)} practitioners"
        raise RegistrationError(f"Practitioner {given!r} {problem} (give a logical id or an "
                                "RPPS/ADELI number)")
    return found.pop()
