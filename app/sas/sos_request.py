"""Recognise and check the SOS Médecins search SAS sends.

`GET /Schedule?_revinclude=Slot:schedule&_include=Schedule:actor:Location
&_include:iterate=Location:organization&_has:Slot:schedule:start=ge…
&_has:Slot:schedule:start=le…&_has:Slot:schedule:status=free
&actor:Location.organization.identifier=urn:oid:1.2.250.1.71.4.2.2|3<SIRET>,…`

The rules of the individual search apply (free slots only, both bounds of a window of at
most 72 h, 400 naming the rule), with 1 to 25 association SIRETs. A SIRET is matched by its
value whatever the system it is sent under: the ANS kit sends it under the RPPS OID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.identifiers import idnst
from app.outcome import BadRequest
from app.sas.request import check_free, window
from app.search.query import split_values

ASSOCIATION_KEY = "actor:Location.organization.identifier"
START = "_has:Slot:schedule:start"
STATUS = "_has:Slot:schedule:status"
SLOTS = ("_revinclude", "Slot:schedule")
LOCATIONS = ("_include", "Schedule:actor:Location")
SOS_INCLUDES = frozenset({SLOTS, LOCATIONS,
                          ("_include:iterate", "Location:organization")})
SOS_PARAMETERS = frozenset({"_revinclude", "_include", "_include:iterate", START, STATUS,
                            ASSOCIATION_KEY, "_count", "_format", "_pretty"})
# The technical search page allows 1 to 25 associations (its functional page says 1 to 10).
MAX_ASSOCIATIONS = 25
SIRET = re.compile(r"3[0-9]{14}")


@dataclass(frozen=True)
class SosSearch:
    sirets: tuple[str, ...]  # prefixed (3 + 14 digits), in request order, unique
    low: datetime  # UTC, inclusive
    high: datetime  # UTC, inclusive


def is_sos_search(resource_type: str, params: list[tuple[str, str]],
                  from_sas: bool = False) -> bool:
    """The SOS question: a Schedule search revincluding its Slots with the associations'
    chain, or including their Locations with nothing but SOS parameters (so that one missing
    its SIRETs is refused); from SAS, any Schedule search reverse-chaining its Slots.
    Without the revinclude, the chain stays an ordinary FHIR search."""
    if resource_type != "Schedule":
        return False
    keys = {key for key, _ in params}
    if from_sas and keys & {START, STATUS, ASSOCIATION_KEY}:
        return True
    return SLOTS in params and (ASSOCIATION_KEY in keys or (
        LOCATIONS in params and keys <= SOS_PARAMETERS))


def _check_vocabulary(params: list[tuple[str, str]]) -> None:
    unknown = sorted({key for key, _ in params if key not in SOS_PARAMETERS})
    if unknown:
        raise BadRequest(f"Unknown or unsupported parameter(s) for the SOS Médecins search: "
                         f"{', '.join(unknown)}", code="not-supported", expression=unknown)
    includes = {(key, value) for key, value in params if key.startswith(("_include", "_rev"))}
    if not includes <= SOS_INCLUDES:
        others = sorted(f"{k}={v}" for k, v in includes - SOS_INCLUDES)
        raise BadRequest(f"The SOS Médecins search includes its Slots, Locations and their "
                         f"Organizations only: {', '.join(others)}", code="not-supported",
                         expression=["_include"])


def _sirets(params: list[tuple[str, str]]) -> tuple[str, ...]:
    found: list[str] = []
    for key, raw in params:
        if key != ASSOCIATION_KEY:
            continue
        for value in split_values(raw):
            siret = idnst(value.rpartition("|")[2], type_code="SIRET")
            if not SIRET.fullmatch(siret):
                raise BadRequest(f"'{value}' is not the SIRET of an association "
                                 "(urn:oid:1.2.250.1.71.4.2.2|3 + 14 digits)", code="value",
                                 expression=[ASSOCIATION_KEY])
            if siret not in found:
                found.append(siret)
    if not found:
        raise BadRequest("At least one association SIRET is required", code="required",
                         expression=[ASSOCIATION_KEY])
    if len(found) > MAX_ASSOCIATIONS:
        raise BadRequest(f"{len(found)} associations requested: at most {MAX_ASSOCIATIONS} "
                         "per search", code="too-costly", expression=[ASSOCIATION_KEY])
    return tuple(found)


def parse_sos_search(params: list[tuple[str, str]], settings: Settings,
                     strict: bool = False) -> SosSearch:
    if strict:
        _check_vocabulary(params)
    check_free(params, STATUS)
    sirets = _sirets(params)
    low, high = window(params, settings, START)
    return SosSearch(sirets, low, high)
