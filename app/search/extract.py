"""Extract the searchable values of a resource, parameter by parameter.

Values are returned as plain tuples ready for the index tables; the shape of each FHIR
datatype (Identifier, CodeableConcept, HumanName, Address, Period, Reference…) decides what
is extracted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.identifiers import identifier_aliases
from app.search.dates import InvalidDate, parse_range, period_range
from app.search.registry import SearchParam

REFERENCE_RE = re.compile(
    r"^(?:(?P<base>.*?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-\.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-\.]{1,64})?$"
)

STRING_LIMIT = 512
TOKEN_LIMIT = 255


@lru_cache(maxsize=16384)  # codings' displays and names repeat across a bulk load
def normalise(text: str) -> str:
    """Case- and accent-insensitive form used by string search ("Hélène" ~ "helene")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


# FHIRPath's `where(element='value')` step, as R4 writes `telecom.where(system='phone')`.
WHERE_RE = re.compile(r"^where\((?P<element>[A-Za-z]+)='(?P<value>[^']*)'\)$")


Step = str | tuple[str, str]  # an element name, or a where(element='value') filter


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[Step, ...]:
    """A path's steps after the type, parsed once (every write walks the same paths)."""
    steps: list[Step] = []
    for step in path.split(".")[1:]:
        where = WHERE_RE.match(step)
        steps.append((where["element"], where["value"]) if where else step)
    return tuple(steps)


def walk(resource: dict[str, Any], path: str) -> list[Any]:
    """Follow a dotted path (`Type.a.b`, `Type.a.where(b='c')`) through nested objects and
    arrays."""
    current: list[Any] = [resource]
    for step in _steps(path):
        if isinstance(step, tuple):
            element, wanted = step
            current = [node for node in current if isinstance(node, dict)
                       and node.get(element) == wanted]
            continue
        following: list[Any] = []
        for node in current:
            if not isinstance(node, dict):
                continue
            value = node.get(step)
            if value is None:
                continue
            if isinstance(value, list):
                following.extend(value)
            else:
                following.append(value)
        current = following
        if not current:
            break
    return current


def _values(resource: dict[str, Any], param: SearchParam) -> Iterator[Any]:
    for path in param.paths:
        yield from walk(resource, path)


def _short(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


def token_rows(resource: dict[str, Any], param: SearchParam) -> list[tuple[str | None, ...]]:
    rows: list[tuple[str | None, ...]] = []
    for value in _values(resource, param):
        rows.extend(_tokens_of(value))
    return [(_short(s, TOKEN_LIMIT), _short(c, TOKEN_LIMIT), _short(t, TOKEN_LIMIT))
            for s, c, t in rows]


def _tokens_of(value: Any) -> list[tuple[str | None, str | None, str | None]]:
    if isinstance(value, bool):
        return [(None, "true" if value else "false", None)]
    if isinstance(value, int):  # integer codes such as Appointment.priority (GAP)
        return [(None, str(value), None)]
    if isinstance(value, str):
        return [(None, value, None)]
    if not isinstance(value, dict):
        return []
    if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
        text = value.get("text")
        codings = value.get("coding") or []
        rows = [(c.get("system"), c.get("code"), normalise(c.get("display") or text or "") or None)
                for c in codings]
        if text and (not rows or any(c.get("display") for c in codings)):
            rows.append((None, None, normalise(text)))  # so that :text also finds the text
        return rows
    if "code" in value:  # Coding
        display = value.get("display")
        return [(value.get("system"), value["code"], normalise(display) if display else None)]
    if "value" in value:  # Identifier or ContactPoint
        kind = value.get("type")
        type_text = normalise(kind["text"]) if isinstance(kind, dict) and kind.get("text") else None
        system, code = value.get("system"), str(value["value"])
        aliases = identifier_aliases(value)
        return [(system, code, type_text), *((s, v, type_text) for s, v in aliases)]
    return []


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def string_rows(resource: dict[str, Any], param: SearchParam) -> list[tuple[str, str]]:
    texts: list[str] = []
    for value in _values(resource, param):
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
            for part in parts:
                item = value.get(part)
                texts.extend(item if isinstance(item, list) else [item] if item else [])
    seen: set[tuple[str, str]] = set()
    rows = []
    for text in texts:
        row = (normalise(text)[:STRING_LIMIT], text[:STRING_LIMIT])
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows


def date_rows(resource: dict[str, Any], param: SearchParam,
              default_tz: str) -> list[tuple[datetime, datetime]]:
    rows = []
    for value in _values(resource, param):
        try:
            if isinstance(value, str):
                rows.append(parse_range(value, default_tz))
            elif isinstance(value, dict) and ("start" in value or "end" in value):
                rows.append(period_range(value.get("start"), value.get("end"), default_tz))
        except InvalidDate:
            continue  # validation rejects bad dates before indexing; never index garbage
    return rows


def parse_reference(reference: str, local_base: str) -> tuple[str | None, str | None, str | None]:
    """(target type, target id, external url) of a reference string."""
    if reference.startswith("#"):
        return None, None, None
    match = REFERENCE_RE.match(reference)
    if match:
        base = match.group("base")
        if base is None or base.rstrip("/") == local_base:
            return match.group("type"), match.group("id"), None
        return match.group("type"), match.group("id"), reference
    return None, None, reference


def reference_rows(resource: dict[str, Any], param: SearchParam,
                   local_base: str) -> list[tuple[str | None, str | None, str | None]]:
    rows = []
    for value in _values(resource, param):
        if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
            continue
        target_type, target_id, url = parse_reference(value["reference"], local_base)
        if target_type is None and url is None:
            continue
        if param.targets and target_type is not None and target_type not in param.targets:
            continue
        rows.append((target_type, target_id, _short(url, 1024)))
    return rows
