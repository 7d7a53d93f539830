"""Typed views of the account tables, and the small helpers every module shares."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REGULATOR = "regulator"
ROLES = (REGULATOR, "staff", "practitioner", "administrator")
# Version of the terms of use (app/web/templates/cgu.html): bump it with the text, and
# every account is asked to accept the new text at its next page.
TERMS_VERSION = "2026-12"


def utcnow() -> datetime:
    # Naive UTC, like every DateTime column of the schema.
    return datetime.now(UTC).replace(tzinfo=None)


def new_token() -> str:
    """A random URL-safe secret (256 bits) handed to the browser or mailed."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens are random and long, so a plain sha256 is enough: a database leak reveals no
    # usable session or reset link.
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str | None) -> str | None:
    cleaned = (email or "").strip().lower()
    return cleaned or None


@dataclass(frozen=True)
class Account:
    pk: int
    practitioner_id: str | None
    email: str | None
    family: str | None
    given: str | None
    role: str
    active: bool
    terms_accepted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None
    terms_version: str | None = None  # of the terms accepted at terms_accepted_at

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.given, self.family) if part) or (self.email or "")

    @property
    def terms_pending(self) -> bool:
        return self.terms_accepted_at is None or self.terms_version != TERMS_VERSION

    @classmethod
    def from_row(cls, row: Any) -> Account:
        # The password hash is left out on purpose: it never travels past the service.
        return cls(pk=row.pk, practitioner_id=row.practitioner_id, email=row.email,
                   family=row.family, given=row.given, role=row.role, active=bool(row.active),
                   terms_accepted_at=row.terms_accepted_at, created_at=row.created_at,
                   updated_at=row.updated_at, deactivated_at=row.deactivated_at,
                   terms_version=row.terms_version)


@dataclass(frozen=True)
class UserSession:
    pk: int
    account_pk: int
    from_sas: bool
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None
    id_token: str | None = None  # the SSO provider's, when the session came from SSO

    @classmethod
    def from_row(cls, row: Any) -> UserSession:
        return cls(pk=row.pk, account_pk=row.account_pk, from_sas=bool(row.from_sas),
                   created_at=row.created_at, last_seen_at=row.last_seen_at,
                   revoked_at=row.revoked_at, id_token=row.id_token)
