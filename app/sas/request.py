"""Recognise and check the slot search the SAS platform sends (INT_R01).

`GET /Slot?_include=Slot:schedule&_include:iterate=Schedule:actor&start=ge…&start=le…
&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|8…,…&status=free`
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.config import Settings
from app.identifiers import IDNPS_SYSTEM, PROFESSIONAL_SYSTEMS, idnps
from app.outcome import BadRequest
from app.search.dates import InvalidDate, date_search_value, parse_range
from app.search.query import split_values

PRACTITIONER_KEY = "schedule.actor:Practitioner.identifier"
TOLERANCE = timedelta(seconds=1)  # "le" bounds cover their last second


@dataclass(frozen=True)
class SasSearch:
    identifiers: tuple[str, ...]  # prefixed IDNPS, in request order, unique
    low: datetime  # UTC, inclusive
    high: datetime  # UTC, inclusive


ITERATED_ACTORS = ("_include:iterate", "Schedule:actor")
# Everything a SAS slot search may carry; under `Prefer: handling=strict` anything else is
# refused, as in every other search.
SAS_PARAMETERS = frozenset({"_include", "_include:iterate", "start", "status",
                            PRACTITIONER_KEY, "_count", "_format", "_pretty"})
SAS_INCLUDES = frozenset({("_include", "Slot:schedule"), ITERATED_ACTORS})


def is_sas_search(resource_type: str, params: list[tuple[str, str]],
                  from_sas: bool = False) -> bool:
    """The SAS question, answered the SAS way (INT_R01).

    Any Slot search made with SAS's certificate is one. Otherwise it is recognised by its
    signature: practitioners by national id with the iterated actor include, or nothing but
    SAS parameters with that include (so that a SAS-shaped request missing its identifiers
    is refused, not answered with every free slot). The same chain without the include
    stays an ordinary FHIR search (Bundle of stored resources).
    """
    if resource_type != "Slot":
        return False
    if from_sas:
        return True
    keys = {key for key, _ in params}
    return ITERATED_ACTORS in params and (PRACTITIONER_KEY in keys or keys <= SAS_PARAMETERS)


def _check_vocabulary(params: list[tuple[str, str]], strict: bool,
                      allowed: frozenset[tuple[str, str]]) -> None:
    unknown = sorted({key for key, _ in params if key not in SAS_PARAMETERS})
    if strict and unknown:
        raise BadRequest(f"Unknown or unsupported parameter(s) for the SAS slot search: "
                         f"{', '.join(unknown)}", code="not-supported", expression=unknown)
    includes = {(key, value) for key, value in params if key.startswith("_include")}
    if strict and not includes <= allowed:
        others = sorted(f"{k}={v}" for k, v in includes - allowed)
        expected = ", ".join(sorted(f"{k}={v}" for k, v in allowed))
        raise BadRequest(f"The SAS slot search includes {expected} only: {', '.join(others)}",
                         code="not-supported", expression=["_include"])


def _identifiers(params: list[tuple[str, str]], limit: int) -> tuple[str, ...]:
    found: list[str] = []
    for key, raw in params:
        if key != PRACTITIONER_KEY:
            continue
        for value in split_values(raw):
            system, _, code = value.rpartition("|")
            if system not in ("", *PROFESSIONAL_SYSTEMS) or not code:
                raise BadRequest(f"'{value}' is not a national professional identifier "
                                 f"({IDNPS_SYSTEM}|<RPPS or ADELI>)", code="value",
                                 expression=[PRACTITIONER_KEY])
            prefixed = idnps(code)
            if prefixed not in found:
                found.append(prefixed)
    if not found:
        raise BadRequest("At least one professional identifier is required",
                         code="required", expression=[PRACTITIONER_KEY])
    if len(found) > limit:
        raise BadRequest(f"{len(found)} professionals requested: at most {limit} per search",
                         code="too-costly", expression=[PRACTITIONER_KEY])
    return tuple(found)


def _bounds(params: list[tuple[str, str]], tz: str,
            name: str = "start") -> tuple[datetime, datetime]:
    bounds: dict[str, tuple[datetime, datetime]] = {}
    for key, raw in params:
        if key != name:
            continue
        for value in split_values(raw):
            prefix, text = date_search_value(value)
            if prefix not in {"ge", "le", "gt", "lt"}:
                raise BadRequest(f"{name}={value}: SAS searches take {name}=ge… and "
                                 f"{name}=le…", expression=[name])
            try:
                bounds[prefix[0]] = parse_range(text, tz)
            except InvalidDate as exc:
                raise BadRequest(f"{name}={value} is malformed: {exc}", code="value",
                                 expression=[name]) from exc
    for side, prefix in (("g", "ge"), ("l", "le")):
        if side not in bounds:
            raise BadRequest(f"The {name}={prefix}… bound of the search window is required",
                             code="required", expression=[name])
    return bounds["g"][0], bounds["l"][1]


def check_free(params: list[tuple[str, str]], name: str = "status") -> None:
    """SAS asks for free slots, and says so."""
    statuses = [raw for key, raw in params if key == name]
    if not statuses:
        raise BadRequest(f"{name}=free is required: SAS searches only free slots",
                         code="required", expression=[name])
    for raw in statuses:
        if raw.strip() != "free":
            raise BadRequest(f"{name}={raw}: SAS searches only free slots",
                             code="value", expression=[name])


def window(params: list[tuple[str, str]], settings: Settings,
           name: str = "start") -> tuple[datetime, datetime]:
    """The search window (UTC, inclusive): both bounds, in order, at most 72 h apart."""
    low, high = _bounds(params, settings.default_timezone, name)
    if high < low:
        raise BadRequest("The search window ends before it starts", code="value",
                         expression=[name])
    limit = timedelta(hours=settings.sas_max_window_hours)
    if high - low > limit + TOLERANCE:
        hours = round((high - low).total_seconds() / 3600, 2)
        raise BadRequest(f"The search window spans {hours:g} h: at most "
                         f"{settings.sas_max_window_hours} h", code="too-costly",
                         expression=[name])
    return low, high


def parse_sas_search(params: list[tuple[str, str]], settings: Settings,
                     strict: bool = False,
                     includes: frozenset[tuple[str, str]] = SAS_INCLUDES) -> SasSearch:
    """The individual offer's request, or (`includes`) another offer's on the same rules."""
    _check_vocabulary(params, strict, includes)
    check_free(params)
    identifiers = _identifiers(params, settings.sas_max_practitioners)
    low, high = window(params, settings)
    return SasSearch(identifiers, low, high)
