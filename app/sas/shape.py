"""Shape stored resources into the SAS aggregator profiles, whatever shape they were stored in.

Only what the profiles allow and SAS uses is kept: national ids prefixed and typed, phones
in +33 form, codes filtered to the bound value sets, times in Europe/Paris with offset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.identifiers import (
    IDENTIFIER_TYPE_SYSTEM,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    phone,
    professional_ids,
)
from app.sas import codes
from app.search.dates import parse_range, zone

Resource = dict[str, Any]


@lru_cache(maxsize=16384)  # slots share their times across practitioners
def sas_instant(value: str, tz: str) -> str:
    """`YYYY-MM-DDTHH:MM:SS.000+HH:MM` in the given zone (the real Paris offset)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else None
    if moment is None or moment.tzinfo is None:
        low, _ = parse_range(value, tz)
        moment = low.replace(tzinfo=zone("UTC"))
    local = moment.astimezone(zone(tz))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + \
        local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def sas_security(resource: Resource,
                 allowed: frozenset[str] = codes.SAS_SLOT_TYPES) -> list[dict[str, str]]:
    """The SAS visibility types of a slot among `allowed` (other labels are dropped)."""
    labels = (resource.get("meta") or {}).get("security") or []
    found = []
    for label in labels:
        code = label.get("code")
        if label.get("system") == codes.SLOT_TYPE_SYSTEM and code in allowed:
            coded = {"system": codes.SLOT_TYPE_SYSTEM, "code": label["code"]}
            if coded not in found:
                found.append(coded)
    return found


def is_sas_visible(slot: Resource) -> bool:
    return slot.get("status") == "free" and bool(sas_security(slot))


def _consultation(coding: Resource) -> bool:
    return (coding.get("system") == codes.ACT_CODE_SYSTEM
            and coding.get("code") in codes.CONSULTATION_TYPES)


def _service_types(slot: Resource, consultation_only: bool) -> list[Resource]:
    """Consultation types (and other codings, unless `consultation_only`), and texts. The
    CPTS concepts (TRE-R66 category) are left out: the CPTS answer writes them itself, one
    per CPTS the slot is shared with and published (app/sas/cpts_answer.py)."""
    shaped = []
    for concept in slot.get("serviceType") or []:
        if any(c.get("system") == codes.CATEGORY_SYSTEM for c in concept.get("coding") or []):
            continue
        codings = [c for c in concept.get("coding") or [] if _consultation(c) or (
            not consultation_only and c.get("system") != codes.ACT_CODE_SYSTEM)]
        kept: Resource = {}
        if codings:
            kept["coding"] = [{k: v for k, v in c.items() if k in {"system", "code", "display"}}
                              for c in codings]
        if concept.get("text"):
            kept["text"] = concept["text"]
        if kept:
            shaped.append(kept)
    return shaped


def _specialties(slot: Resource) -> list[Resource]:
    """R38 codings are kept; other specialties travel as text (SAS accepts both)."""
    shaped = []
    for concept in slot.get("specialty") or []:
        coded = [{"system": codes.SPECIALTY_SYSTEM, "code": c["code"]}
                 for c in concept.get("coding") or []
                 if c.get("system") == codes.SPECIALTY_SYSTEM and c.get("code")]
        text = concept.get("text") or next(
            (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None)
        if coded:
            shaped.append({"coding": coded, **({"text": text} if concept.get("text") else {})})
        elif text:
            shaped.append({"text": text})
    return shaped


def _appointment_type(slot: Resource) -> Resource | None:
    concept = slot.get("appointmentType") or {}
    for coding in concept.get("coding") or []:
        if coding.get("code") in codes.APPOINTMENT_REASONS:
            return {"coding": [{"system": codes.APPOINTMENT_REASON_SYSTEM,
                                "code": coding["code"]}]}
    return None


def slot(resource: Resource, schedule_id: str, tz: str, *, profile: str = codes.SLOT_PROFILE,
         labels: frozenset[str] = codes.SAS_SLOT_TYPES,
         consultation_only: bool = False) -> Resource:
    """FrSlotAgregateur (or the slot profile of another offer, with its visibility types and
    consultation-types-only serviceType codings), without `comment` (added per request from
    configuration)."""
    shaped: Resource = {
        "resourceType": "Slot",
        "id": resource["id"],
        "meta": {"profile": [profile], "security": sas_security(resource, labels)},
    }
    service_types = _service_types(resource, consultation_only)
    if service_types:
        shaped["serviceType"] = service_types
    specialties = _specialties(resource)
    if specialties:
        shaped["specialty"] = specialties
    appointment_type = _appointment_type(resource)
    if appointment_type:
        shaped["appointmentType"] = appointment_type
    shaped["schedule"] = {"reference": f"Schedule/{schedule_id}"}
    shaped["status"] = "free"
    shaped["start"] = sas_instant(resource["start"], tz)
    shaped["end"] = sas_instant(resource["end"], tz)
    return shaped


def schedule(schedule_id: str, practitioner_id: str, role_id: str) -> Resource:
    """One Schedule per practice place, naming the practitioner and the place."""
    return {
        "resourceType": "Schedule",
        "id": schedule_id,
        "meta": {"profile": [codes.SCHEDULE_PROFILE]},
        "actor": [{"reference": f"Practitioner/{practitioner_id}"},
                  {"reference": f"PractitionerRole/{role_id}"}],
    }


def telecoms(contact_points: Iterable[Any]) -> list[Resource]:
    """Contact points with a value, phones in their international form, each once."""
    shaped: list[Resource] = []
    seen: set[tuple[str, str]] = set()
    for telecom in contact_points:
        if not isinstance(telecom, dict) or not telecom.get("value"):
            continue
        system, value = telecom.get("system"), str(telecom["value"])
        if system in {"phone", "fax"}:
            value = phone(value)
        if (str(system), value) in seen:
            continue
        seen.add((str(system), value))
        shaped.append({k: v for k, v in {**telecom, "value": value}.items()
                       if k in {"system", "value", "use"}})
    return shaped


def practitioner(resource: Resource) -> Resource:
    identifiers = [{
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "IDNPS"}]},
        "system": IDNPS_SYSTEM,
        "value": value,
    } for value in professional_ids(resource.get("identifier"))]
    shaped: Resource = {
        "resourceType": "Practitioner",
        "id": resource["id"],
        "meta": {"profile": [codes.PRACTITIONER_PROFILE]},
        "identifier": identifiers[:1],
    }
    names = [{k: v for k, v in name.items() if k in {"family", "given", "prefix", "use"}}
             for name in resource.get("name") or []]
    if names:
        shaped["name"] = names
    return shaped


def place_identifier(resource: Resource, address: Resource, id_system: str, *,
                     internal: bool = False) -> Resource:
    """FrLocation wants a typed identifier: the agenda's own one when the Location has
    one, else an internal one (INTRN) derived from the address, so that a place has the
    same identifier whether the agenda stored its Location apart or contained. `internal`
    types it INTRN whatever the agenda said (the SOS Location profile fixes that type)."""
    kind = {"coding": [{"system": codes.LOCATION_ID_TYPES, "code": "INTRN"}]}
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") and identifier.get(
                "value"):
            typed = identifier.get("type") if isinstance(identifier.get("type"), dict) else None
            return {"type": kind if internal else typed or kind,
                    "system": identifier["system"], "value": str(identifier["value"])}
    key = "|".join([*address["line"], address["postalCode"], address["city"]]).casefold()
    return {"type": kind, "system": id_system,
            "value": hashlib.sha256(key.encode()).hexdigest()[:20]}


def address(resource: Resource) -> Resource | None:
    """The published address of a place (line, city, postal code), or None when unusable;
    the aggregator profiles allow one line, so several stored lines are joined."""
    stored = resource.get("address") or {}
    lines = [str(line) for line in stored.get("line") or [] if line]
    if not (lines and stored.get("city") and stored.get("postalCode")):
        return None
    return {"line": [", ".join(lines)], "city": stored["city"],
            "postalCode": stored["postalCode"]}


def location(resource: Resource, contained_id: str, id_system: str) -> Resource | None:
    """FrLocationAgregateur (contained), or None when there is no usable address."""
    published = address(resource)
    if published is None:
        return None
    shaped: Resource = {
        "resourceType": "Location",
        "id": contained_id,
        "meta": {"profile": [codes.LOCATION_PROFILE]},
        "identifier": [place_identifier(resource, published, id_system)],
    }
    if resource.get("name"):
        shaped["name"] = resource["name"]
    shaped["address"] = published
    return shaped


def practitioner_role(resource: Resource, practitioner_id: str, place: Resource,
                      structure_id: str | None, contact_points: Iterable[Any]) -> Resource:
    shaped: Resource = {
        "resourceType": "PractitionerRole",
        "id": resource["id"],
        "meta": {"profile": [codes.ROLE_PROFILE]},
        "contained": [place],
        "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
    }
    if structure_id:
        shaped["organization"] = {"identifier": {
            "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "IDNST"}]},
            "system": IDNST_SYSTEM,
            "value": structure_id,
        }}
    shaped["location"] = [{"reference": f"#{place['id']}"}]
    for element in ("code", "specialty"):
        if resource.get(element):
            shaped[element] = resource[element]
    published = telecoms(contact_points)
    if published:
        shaped["telecom"] = published
    return shaped
