"""The authenticated caller of a FHIR request, as every later check sees it."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.scopes import Scopes

SAS, CLIENT, DEVELOPMENT = "sas", "client", "development"

# What SAS does with us (INT_R01 slot search, INT_R02 regulator accounts), and the reads
# that go with them. Regulator-only Practitioner writes are enforced by the policy.
SAS_SCOPES = Scopes.parse(
    "system/Slot.rs system/Schedule.rs system/PractitionerRole.rs system/Location.rs "
    "system/Organization.rs system/Practitioner.cruds")


@dataclass(frozen=True)
class Principal:
    kind: str  # SAS (client certificate), CLIENT (OAuth 2), DEVELOPMENT (checks off)
    subject: str  # certificate subject, OAuth client id, or a development label
    scopes: Scopes
    # A client restricted to the agendas of these practitioners and organisations (logical
    # ids); both empty = not restricted.
    practitioners: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        return bool(self.practitioners or self.organizations)

    @property
    def is_sas(self) -> bool:
        return self.kind == SAS

    @property
    def unchecked(self) -> bool:
        return self.kind == DEVELOPMENT

    def describe(self) -> str:
        """The author recorded on versions and AuditEvents."""
        labels = {SAS: "sas-certificate", CLIENT: "oauth-client", DEVELOPMENT: "development"}
        return f"{labels.get(self.kind, self.kind)} {self.subject}"


def sas_principal(subject: str) -> Principal:
    return Principal(SAS, subject, SAS_SCOPES)


def development_principal(label: str) -> Principal:
    return Principal(DEVELOPMENT, label, Scopes.everything())
