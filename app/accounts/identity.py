"""Which regulator account an identity from the SSO provider is.

SAS created the account (INT_R02) as a FrPractitionerRegul Practitioner carrying the
regulator's national id and/or SAS technical id; the provider names the person by the same
ids (Pro Santé Connect's `SubjectNameID` is the IDNPS: 8 + RPPS). The national id wins over
the technical id, and an active account over a deactivated one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from app.accounts.models import Account
from app.accounts.service import find_by_practitioner
from app.identifiers import IDNPS_SYSTEM, SAS_TECHNICAL_SYSTEM, idnps
from app.sas.regulators import is_regulator
from app.search.api import find, one_of

FOUND, INACTIVE, UNKNOWN = "found", "inactive", "unknown"


@dataclass(frozen=True)
class Identity:
    """What the provider said about the person (claims already read)."""

    national_id: str | None
    technical_id: str | None
    family: str | None = None
    given: str | None = None

    @property
    def label(self) -> str:
        """How the audit trail names the person."""
        ids = [f"{IDNPS_SYSTEM}|{self.national_id}" if self.national_id else None,
               f"{SAS_TECHNICAL_SYSTEM}|{self.technical_id}" if self.technical_id else None]
        return " ".join(i for i in ids if i) or "(no identifier)"


@dataclass(frozen=True)
class IdentityMatch:
    outcome: str  # FOUND, INACTIVE (only deactivated accounts hold the ids), UNKNOWN
    account: Account | None = None


def _accounts_holding(conn: Connection, system: str, value: str) -> list[Account]:
    holders = find(conn, "Practitioner", [("identifier", one_of([f"{system}|{value}"]))])
    accounts = [find_by_practitioner(conn, h.resource_id) for h in holders
                if is_regulator(h.as_dict())]
    return [a for a in accounts if a is not None]


def regulator_account(conn: Connection, identity: Identity) -> IdentityMatch:
    wanted = [(IDNPS_SYSTEM, idnps(identity.national_id) if identity.national_id else None),
              (SAS_TECHNICAL_SYSTEM, identity.technical_id)]
    held: list[Account] = []
    for system, value in wanted:
        if value:
            held.extend(_accounts_holding(conn, system, value))
    active = [a for a in held if a.active]
    if active:
        return IdentityMatch(FOUND, active[0])
    return IdentityMatch(INACTIVE, held[0]) if held else IdentityMatch(UNKNOWN)
