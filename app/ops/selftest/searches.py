"""The SAS searches as the ANS kit writes them: parameters in alphabetical order, `|` as
%7C and `+` as %2B, a window from now to the end of the day after tomorrow (Paris) — with
the true Paris offset, where the kit writes +00:00 (README, "SAS conformance")."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.ops.selftest.bundle_rules import Search

PARIS = ZoneInfo("Europe/Paris")
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000") + moment.strftime("%z")[:3] + ":" + (
        moment.strftime("%z")[3:])


def _encoded(value: str) -> str:
    return value.replace("|", "%7C").replace("+", "%2B")


def ps_search(identifiers: Sequence[str], now: datetime | None = None, *,
              hours: float | None = None) -> Search:
    """The individual-offer search for these prefixed IDNPS; `hours` replaces the kit's
    window (now → J+2 23:59:59) by now → now + hours."""
    now = (now or datetime.now(PARIS)).astimezone(PARIS).replace(microsecond=0)
    last_day = now.date() + timedelta(days=2)
    end = (now + timedelta(hours=hours) if hours is not None
           else datetime.combine(last_day, time(23, 59, 59), PARIS))
    people = ",".join(f"{IDNPS_SYSTEM}|{value}" for value in identifiers)
    query = "&".join([
        "_include=Slot:schedule", "_include:iterate=Schedule:actor",
        f"schedule.actor:Practitioner.identifier={_encoded(people)}",
        f"start=ge{_encoded(_instant(now))}", f"start=le{_encoded(_instant(end))}",
        "status=free"])
    return Search(f"Slot?{query}", tuple(identifiers), now, last_day)


def cpts_search(identifiers: Sequence[str], now: datetime | None = None) -> str:
    """The CPTS variant: two more includes, dates without offset (kit ig_launch_2)."""
    now = (now or datetime.now(PARIS)).astimezone(PARIS).replace(microsecond=0)
    end = datetime.combine(now.date() + timedelta(days=2), time(23, 59, 59))
    people = ",".join(f"{IDNPS_SYSTEM}|{value}" for value in identifiers)
    return "Slot?" + "&".join([
        "_include=Slot:schedule", "_include=Slot:service-type-reference",
        "_include:iterate=Schedule:actor", "_include:iterate=HealthcareService:organization",
        f"schedule.actor:Practitioner.identifier={_encoded(people)}",
        f"start=ge{now:%Y-%m-%dT%H:%M:%S}.000", f"start=le{end:%Y-%m-%dT%H:%M:%S}.000",
        "status=free"])


def sos_search(sirets: Sequence[str], now: datetime | None = None) -> str:
    """The SOS Médecins variant: a Schedule search by structure (kit ig_launch_3)."""
    now = (now or datetime.now(PARIS)).astimezone(PARIS).replace(microsecond=0)
    end = datetime.combine(now.date() + timedelta(days=2), time(23, 59, 59))
    structures = ",".join(f"{STRUCTURE_SYSTEM}|{value}" for value in sirets)
    return "Schedule?" + "&".join([
        f"_has:Slot:schedule:start=ge{now:%Y-%m-%dT%H:%M:%S}",
        f"_has:Slot:schedule:start=le{end:%Y-%m-%dT%H:%M:%S}",
        "_has:Slot:schedule:status=free", "_include=Schedule:actor:Location",
        "_include:iterate=Location:organization", "_revinclude=Slot:schedule",
        f"actor:Location.organization.identifier={_encoded(structures)}"])


def unknown_identifiers(count: int, seed: int = 25) -> list[str]:
    """IDNPS-shaped values nobody holds (the 25-identifier rule is about the count)."""
    rng = random.Random(seed)
    return [f"8{rng.randrange(10**10, 10**11)}" for _ in range(count)]


def national_ids(bundle: dict[str, Any]) -> list[str]:
    """The prefixed IDNPS of the Practitioners of a searchset (RPPS made 8…)."""
    found: list[str] = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "Practitioner":
            continue
        for identifier in resource.get("identifier", []):
            value = str(identifier.get("value", ""))
            if identifier.get("system") == IDNPS_SYSTEM and value:
                found.append(value)
            elif identifier.get("system") == RPPS_SYSTEM and len(value) == 11:
                found.append(f"8{value}")
    return list(dict.fromkeys(found))
