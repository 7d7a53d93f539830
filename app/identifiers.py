"""French national identifiers: the prefix rules of IDNPS and IDNST, and phone numbers.

Stored data may carry a national id with or without its prefix; searches must match both
and answers always carry the prefixed form (SAS FAQ, "Gestion des préfixes").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
# FR Core's system for the bare 11-digit RPPS number (its IDNPS is "8" + the number).
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
PROFESSIONAL_SYSTEMS = frozenset({IDNPS_SYSTEM, RPPS_SYSTEM})
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
    """The prefixed IDNST of a structure number: FINESS (9 chars) → 1…, SIRET (14) → 3…,
    RPPS-rang cabinet (RPPS + rang, 13 digits) → 4….

    RPPS-rang and ADELI-rang cabinet ids usually carry their prefix (4…, 0…) in the national
    directories, so a 14-digit id starting with 4 or 0 stored as an IDNST is taken as
    already prefixed; declare the identifier type (FINEG/FINEJ/SIRET) to remove any doubt.
    An unprefixed 13-digit cabinet id starting with 1 (every RPPS number does) is RPPS-rang.
    """
    value = value.strip()
    finess = type_code in FINESS_TYPES or system in FINESS_SYSTEMS
    siret = type_code == "SIRET" or system in SIRET_SYSTEMS
    if len(value) == 9 and (finess or not siret):
        return "1" + value
    digits = value.isascii() and value.isdigit()
    if len(value) == 14 and digits and (siret or (not finess and value[0] not in "40")):
        return "3" + value
    if len(value) == 13 and digits and value[0] == "1" and not (finess or siret):
        return "4" + value
    return value


def type_code(identifier: dict[str, Any]) -> str | None:
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    for coding in codings or []:
        if coding.get("system") == IDENTIFIER_TYPE_SYSTEM:
            return str(coding.get("code"))
    return None


def identifier_aliases(identifier: dict[str, Any]) -> list[tuple[str, str]]:
    """Extra (system, value) index entries so that a search by the prefixed national id
    finds an id stored unprefixed, or under FR Core's RPPS system."""
    system, value = identifier.get("system"), str(identifier.get("value", ""))
    if system in PROFESSIONAL_SYSTEMS:
        aliases = [(IDNPS_SYSTEM, idnps(value))]
    elif system == IDNST_SYSTEM or system in FINESS_SYSTEMS | SIRET_SYSTEMS:
        aliases = [(str(system), idnst(value, system, type_code(identifier)))]
    else:
        return []
    return [alias for alias in aliases if alias != (system, value)]


def professional_ids(identifiers: Iterable[Any] | None) -> list[str]:
    """The prefixed IDNPS of a practitioner's identifiers (IDNPS or FR Core RPPS system),
    RPPS before ADELI, without repeats."""
    found = {idnps(str(i["value"])) for i in identifiers or []
             if isinstance(i, dict) and i.get("system") in PROFESSIONAL_SYSTEMS
             and i.get("value")}
    return sorted(found, key=lambda value: (not value.startswith("8"), value))


def search_value(system: str | None, value: str) -> str:
    """The form a token search compares with: prefixed for national ids."""
    if system == IDNPS_SYSTEM:
        return idnps(value)
    if system == IDNST_SYSTEM:
        return idnst(value, system)
    return value


def structure_ids(identifiers: Iterable[Any]) -> list[str]:
    """The prefixed IDNST of an organisation's national structure identifiers, in order."""
    found = []
    for identifier in identifiers:
        if not isinstance(identifier, dict):
            continue
        system, value = identifier.get("system"), identifier.get("value")
        if value and system in {IDNST_SYSTEM} | FINESS_SYSTEMS | SIRET_SYSTEMS:
            found.append(idnst(str(value), system, type_code(identifier)))
    return list(dict.fromkeys(found))


def structure_ids_of(identifiers: Iterable[Any], prefix: str) -> list[str]:
    """Those of one kind: `1` FINESS (a CPTS), `3` SIRET (an SOS Médecins association)."""
    return [value for value in structure_ids(identifiers) if value.startswith(prefix)]


def best_structure_id(identifiers: Iterable[dict[str, Any]]) -> str | None:
    """The IDNST to publish for an organisation: FINESS, else SIRET, else rang."""
    candidates = structure_ids(identifiers)
    for prefix in STRUCTURE_PREFERENCE:
        for candidate in candidates:
            if candidate.startswith(prefix):
                return candidate
    return candidates[0] if candidates else None


def logical_structure_id(identifier: dict[str, Any]) -> str | None:
    """The IDNST of a logical reference to a structure (`organization.identifier`): its
    system may be left out there, the element itself says it is a national structure id."""
    if not identifier.get("value"):
        return None
    if identifier.get("system") is None:
        return idnst(str(identifier["value"]), IDNST_SYSTEM, type_code(identifier))
    return best_structure_id([identifier])


_PHONE_NOISE = re.compile(r"[\s.\-()/\u00a0]")
_TRUNK_ZERO = re.compile(r"^\+(33|262|590|594|596|508)\(0\)")

# Overseas departments dial as French numbers at home (0 + 9 digits) but have their own
# country codes: the first digits of the national number tell which.
OVERSEAS_CODES = (
    (("262", "263", "269", "639", "692", "693"), "+262"),  # La Réunion, Mayotte
    (("590", "690", "691"), "+590"),  # Guadeloupe, Saint-Martin, Saint-Barthélemy
    (("594", "694"), "+594"),  # Guyane
    (("596", "696", "697"), "+596"),  # Martinique
    (("508",), "+508"),  # Saint-Pierre-et-Miquelon
)


def phone(value: str) -> str:
    """A French number in its international form: `04 72 00 00 00`, `04.72.00.00.00`,
    `0033 4…`, `+33 (0)4…` → `+33472000000`; `0262 …` → `+262262…`."""
    digits = _TRUNK_ZERO.sub(r"+\1", value.strip())
    digits = _PHONE_NOISE.sub("", digits)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+330") and len(digits) == 13:
        digits = "+33" + digits[4:]
    if digits.startswith("0") and len(digits) == 10 and digits.isdigit():
        national = digits[1:]
        for prefixes, country in OVERSEAS_CODES:
            if national.startswith(prefixes):
                return country + national
        return "+33" + national
    return digits
