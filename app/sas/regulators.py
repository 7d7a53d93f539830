"""Regulator accounts managed by SAS (INT_R02) as FrPractitionerRegul Practitioners.

Hooked into the repository as an interceptor: every write of a regulator Practitioner is
checked against the profile's rules and the uniqueness of identifiers and emails among
active accounts, then mirrored into the user account behind it, in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from app.identifiers import IDENTIFIER_TYPE_SYSTEM, IDNPS_SYSTEM, SAS_TECHNICAL_SYSTEM
from app.outcome import Conflict, Issue, Unprocessable
from app.search.api import find, one_of
from app.storage import locks
from app.storage.hooks import ConditionalEvent, Interceptor, WriteEvent
from app.storage.repository import Repository

SAS_SOURCE = "urn:oid:1.2.250.1.213.3.6"
REGULATOR_PROFILE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                     "FrPractitionerRegul")
# Identifier system → the type code it must carry (the two slices of FrPractitionerRegul).
IDENTIFIER_TYPES = {IDNPS_SYSTEM: "IDNPS", SAS_TECHNICAL_SYSTEM: "INTRN"}
MAX_NAME, MAX_EMAIL = 255, 320  # what the user account behind the regulator can hold
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Resource = dict[str, Any]
AccountSync = Callable[[Any, str, Resource | None], None]


def is_regulator(resource: Resource | None) -> bool:
    meta = (resource or {}).get("meta") or {}
    if not isinstance(meta, dict):
        return False
    profiles = meta.get("profile")
    return meta.get("source") == SAS_SOURCE or (
        isinstance(profiles, list) and REGULATOR_PROFILE in profiles)


def emails(resource: Resource) -> list[str]:
    return [str(t["value"]).strip().lower() for t in resource.get("telecom") or []
            if t.get("system") == "email" and t.get("value")]


def _type_code(identifier: Resource) -> str | None:
    for coding in (identifier.get("type") or {}).get("coding") or []:
        if coding.get("system") == IDENTIFIER_TYPE_SYSTEM:
            return coding.get("code")
    return None


def _identifier_issues(resource: Resource) -> list[Issue]:
    identifiers = resource.get("identifier") or []
    if not identifiers:
        return [Issue("required", "Practitioner.identifier: a regulator needs a national id "
                      f"({IDNPS_SYSTEM}) or a SAS technical id ({SAS_TECHNICAL_SYSTEM})",
                      expression=["Practitioner.identifier"])]
    issues, seen = [], set()
    for index, identifier in enumerate(identifiers):
        where = f"Practitioner.identifier[{index}]"
        system, value = identifier.get("system"), identifier.get("value")
        expected = IDENTIFIER_TYPES.get(system)
        if expected is None:
            issues.append(Issue("value", f"{where}.system: '{system}' is neither {IDNPS_SYSTEM} "
                                f"nor {SAS_TECHNICAL_SYSTEM}", expression=[f"{where}.system"]))
            continue
        if system in seen:
            issues.append(Issue("structure", f"{where}: only one identifier per system",
                                expression=[where]))
        seen.add(system)
        if _type_code(identifier) != expected:
            issues.append(Issue("value", f"{where}.type: must be {IDENTIFIER_TYPE_SYSTEM}"
                                f"#{expected} for {system}", expression=[f"{where}.type"]))
        # SAS's technical ids are UUIDs today, but FrPractitionerRegul only requires a
        # value (and the ANS kit sends other values under this system): any value goes.
        if not str(value or "").strip():
            issues.append(Issue("required", f"{where}.value is required",
                                expression=[f"{where}.value"]))
    return issues


def rule_issues(resource: Resource) -> list[Issue]:
    """What breaks FrPractitionerRegul (and INT_R02's mandatory elements)."""
    issues = _identifier_issues(resource)
    if not isinstance(resource.get("active"), bool):
        issues.append(Issue("required", "Practitioner.active (true or false) is required",
                            expression=["Practitioner.active"]))
    names = resource.get("name") or []
    if not any(n.get("family") and n.get("given") for n in names):
        issues.append(Issue("required", "Practitioner.name needs a family and a given name",
                            expression=["Practitioner.name"]))
    for index, name in enumerate(names):
        parts = [name.get("family") or "", " ".join(name.get("given") or [])]
        where = f"Practitioner.name[{index}]"
        if any(len(part) > MAX_NAME for part in parts):
            issues.append(Issue("value", f"{where}: names are limited to {MAX_NAME} "
                                "characters", expression=[where]))
    for index, telecom in enumerate(resource.get("telecom") or []):
        where = f"Practitioner.telecom[{index}]"
        if telecom.get("system") != "email":
            issues.append(Issue("value", f"{where}.system: a regulator's telecom is an email",
                                expression=[f"{where}.system"]))
        elif len(str(telecom.get("value") or "")) > MAX_EMAIL or not EMAIL_RE.match(
                str(telecom.get("value") or "")):
            issues.append(Issue("value", f"{where}.value: '{telecom.get('value')}' is not an "
                                "email address", expression=[f"{where}.value"]))
    if not emails(resource):
        issues.append(Issue("required", "Practitioner.telecom: an email is required",
                            expression=["Practitioner.telecom"]))
    return issues


def _active_regulators_holding(repo: Repository, resource_id: str, system: str,
                               value: str) -> list[str]:
    """The other active regulator accounts with this identifier."""
    holders = find(repo.conn, "Practitioner", [
        ("identifier", one_of([f"{system}|{value}"])), ("active", "true")])
    return [h.resource_id for h in holders
            if h.resource_id != resource_id and is_regulator(h.as_dict())]


def _conflicts(repo: Repository, resource_id: str, resource: Resource) -> list[Issue]:
    """Identifiers already held by another active account. Emails may be shared: neither
    FrPractitionerRegul nor INT_R02 makes them unique, and SAS (its test kit included)
    sends accounts that share one."""
    issues = []
    for index, identifier in enumerate(resource.get("identifier") or []):
        system, value = str(identifier.get("system")), str(identifier.get("value"))
        holders = _active_regulators_holding(repo, resource_id, system, value)
        if holders:
            issues.append(Issue("duplicate", f"{system}|{value} already belongs to the active "
                                f"account Practitioner/{holders[0]}",
                                expression=[f"Practitioner.identifier[{index}]"]))
    return issues


class RegulatorRules(Interceptor):
    """Profile rules, uniqueness among active accounts, account mirroring."""

    def __init__(self, sync_account: AccountSync | None = None) -> None:
        self.sync_account = sync_account

    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Practitioner" or not is_regulator(event.resource):
            return
        resource = event.resource or {}
        issues = rule_issues(resource)
        if issues:
            raise Unprocessable("This regulator account breaks FrPractitionerRegul",
                                issues=issues)
        if resource.get("active") is not True:
            return  # a deactivated account frees its identifiers and email
        # Two accounts claiming the same id at once must take turns.
        locks.hold(repo.conn, *(f"regulator-id:{i.get('system')}|{i.get('value')}"
                                for i in resource.get("identifier") or []))
        conflicts = _conflicts(repo, event.resource_id, resource)
        if conflicts:
            raise Conflict("An active regulator account already holds this identity",
                           issues=conflicts)

    def assigns_ids(self, event: ConditionalEvent) -> bool:
        """SAS's regulator writes carry ids of SAS's own (fixed or random, per the ANS
        kit): the server assigns the ids, the identifier criteria choose the account."""
        return event.resource_type == "Practitioner" and is_regulator(event.body)

    def conditional_criteria(self, event: ConditionalEvent) -> list[tuple[str, str]]:
        """Extra criteria for conditional writes: SAS's `PUT Practitioner?identifier=…` of a
        regulator must never land on the agenda Practitioner of a doctor with the same RPPS,
        nor an agenda's update on a regulator account."""
        if event.resource_type != "Practitioner":
            return []
        if is_regulator(event.body):
            return [("_source", SAS_SOURCE)]
        return [("_source:not", SAS_SOURCE)]

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Practitioner" or self.sync_account is None:
            return
        was_regulator = event.previous is not None and is_regulator(event.previous.as_dict())
        if is_regulator(event.resource) or was_regulator:
            self.sync_account(repo.conn, event.resource_id, event.resource)
