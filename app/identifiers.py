"""French national identifiers: the prefix rules of IDNPS and IDNST, and phone numbers.

Stored data may carry a national id with or without its prefix; searches must match both
and answers always carry the prefixed form (SAS FAQ, "Gestion des préfixes").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
SAS_TECHNICAL_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
IDENTIFIER_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"

# Other systems agendas use for structure numbers, with the IDNST prefix of each.
FINESS_SYSTEMS = {"http://finess.sante.gouv.fr", "urn:oid:1.2.250.1.71.4.2.2.1"}
SIRET_SYSTEMS = {"http://sirene.fr", "https://sirene.fr", "urn:oid:1.2.250.1.71.4.2.2.3"}
FINESS_TYPES = {"FINEG", "FINEJ"}
STRUCTURE_PREFERENCE = ("1", "3", "4", "0")  # FINESS, then SIRET, then RPPS rang, ADELI rang


def idnps(value: str) -> str:
    """The prefixed IDNPS of an RPPS (11 digits → 8…) or ADELI (9 chars → 0…) number."""
    value = value.strip()
    if len(value) == 11 and value.isascii() and value.isdigit():
        return "8" + value
    if len(value) == 9:
        return "0" + value
    return value


def idnst(value: str, system: str | None = None, type_code: str | None = None) -> str:
    """The prefixed IDNST of a structure number: FINESS (9 chars) → 1…, SIRET (14) → 3….

    RPPS-rang and ADELI-rang cabinet ids always carry their prefix (4…, 0…) in the national
    directories, so a 14-digit id starting with 4 or 0 stored as an IDNST is taken as
    already prefixed; declare the identifier type (FINEG/FINEJ/SIRET) to remove any doubt.
    """
    value = value.strip()
    finess = type_code in FINESS_TYPES or system in FINESS_SYSTEMS
    siret = type_code == "SIRET" or system in SIRET_SYSTEMS
    if len(value) == 9 and (finess or not siret):
        return "1" + value
    digits = value.isascii() and value.isdigit()
    if len(value) == 14 and digits and (siret or (not finess and value[0] not in "40")):
        return "3" + value
    return value


def type_code(identifier: dict[str, Any]) -> str | None:
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    for coding in codings or []:
        if coding.get("system") == IDENTIFIER_TYPE_SYSTEM:
            return str(coding.get("code"))
    return None


def identifier_aliases(identifier: dict[str, Any]) -> list[str]:
    """Extra index values so that a prefixed search finds an unprefixed stored id."""
    system, value = identifier.get("system"), str(identifier.get("value", ""))
    if system == IDNPS_SYSTEM:
        prefixed = idnps(value)
    elif system == IDNST_SYSTEM or system in FINESS_SYSTEMS | SIRET_SYSTEMS:
        prefixed = idnst(value, system, type_code(identifier))
    else:
        return []
    return [prefixed] if prefixed != value else []


def search_value(system: str | None, value: str) -> str:
    """The form a token search compares with: prefixed for national ids."""
    if system == IDNPS_SYSTEM:
        return idnps(value)
    if system == IDNST_SYSTEM:
        return idnst(value, system)
    return value


def best_structure_id(identifiers: Iterable[dict[str, Any]]) -> str | None:
    """The IDNST to publish for an organisation: FINESS, else SIRET, else rang."""
    candidates = []
    for identifier in identifiers:
        system, value = identifier.get("system"), identifier.get("value")
        if not value or (system not in {IDNST_SYSTEM} | FINESS_SYSTEMS | SIRET_SYSTEMS):
            continue
        candidates.append(idnst(str(value), system, type_code(identifier)))
    for prefix in STRUCTURE_PREFERENCE:
        for candidate in candidates:
            if candidate.startswith(prefix):
                return candidate
    return candidates[0] if candidates else None


_PHONE_NOISE = re.compile(r"[\s.\-()/]")


def phone(value: str) -> str:
    """`04 72 00 00 00`, `0472000000` or `0033 4…` → `+33472000000`."""
    digits = _PHONE_NOISE.sub("", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        return "+33" + digits[1:]
    return digits
