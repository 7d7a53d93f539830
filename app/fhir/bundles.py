"""Shape searchset and history Bundles (links, fullUrl, search modes, total)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from app.clock import format_instant, utc_now
from app.outcome import Issue, operation_outcome
from app.search import elements
from app.search.engine import SearchResult
from app.storage.repository import Stored

# Who made a version, on the history entry's request (FHIR has no element for it there).
AUTHOR_EXTENSION = "https://fhir-agenda.org/fhir/StructureDefinition/version-author"


def full_url(base: str, stored: Stored) -> str:
    return f"{base}/{stored.resource_type}/{stored.resource_id}"


def _link(base: str, resource_type: str, pairs: list[tuple[str, str]]) -> str:
    query = urlencode(pairs, safe="|:,/")
    return f"{base}/{resource_type}" + (f"?{query}" if query else "")


def warnings(result: SearchResult) -> list[Issue]:
    """What lenient handling let through: said in the Bundle (an outcome entry), not hidden."""
    query, issues = result.query, []
    if query.ignored:
        issues.append(Issue("not-supported", "Search parameters ignored: "
                            f"{', '.join(query.ignored)}", severity="warning"))
    if query.count is not None and query.count > result.count:
        issues.append(Issue("too-costly", f"_count={query.count} exceeds the largest page "
                            f"this server returns; pages hold {result.count} entries",
                            severity="warning"))
    return issues


def searchset(result: SearchResult, base: str) -> dict[str, Any]:
    query = result.query
    paging = [(k, v) for k, v in query.used if k not in {"_count", "_offset"}]
    links = [{"relation": "self", "url": _link(
        base, query.resource_type,
        [*paging, ("_count", str(result.count)), ("_offset", str(query.offset))])}]
    if not query.summary_count and result.count > 0:
        if query.offset + result.count < result.total:
            links.append({"relation": "next", "url": _link(
                base, query.resource_type,
                [*paging, ("_count", str(result.count)),
                 ("_offset", str(query.offset + result.count))])})
        if query.offset > 0:
            links.append({"relation": "previous", "url": _link(
                base, query.resource_type,
                [*paging, ("_count", str(result.count)),
                 ("_offset", str(max(0, query.offset - result.count)))])})
    entries: list[dict[str, Any]] = []
    for stored, mode in ([(m, "match") for m in result.matches]
                         + [(i, "include") for i in result.included]):
        resource = stored.as_dict()
        if query.elements and mode == "match":
            resource = elements.keep_only(resource, set(query.elements))
        elif query.summary:
            resource = elements.apply_summary(resource, query.summary)
        entries.append({"fullUrl": full_url(base, stored), "resource": resource,
                        "search": {"mode": mode}})
    issues = warnings(result)
    if issues:
        entries.append({"resource": operation_outcome(issues), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(utc_now())},
        "type": "searchset",
        "total": result.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def _with_offset(url: str, count: int, offset: int) -> str:
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in {"_count", "_offset"}]
    pairs += [("_count", str(count)), ("_offset", str(offset))]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="|:,/")))


def history(total: int, versions: list[Stored], base: str, self_url: str, count: int,
            offset: int) -> dict[str, Any]:
    entries = []
    for stored in versions:
        entry: dict[str, Any] = {"fullUrl": full_url(base, stored)}
        if stored.content:
            entry["resource"] = orjson.loads(stored.content)
        method = stored.method or ("DELETE" if stored.deleted else "PUT")
        url = stored.resource_type if method == "POST" else (
            f"{stored.resource_type}/{stored.resource_id}")
        entry["request"] = {"method": method, "url": url}
        if stored.author:
            entry["request"]["extension"] = [{"url": AUTHOR_EXTENSION,
                                              "valueString": stored.author}]
        # What the interaction answered: a DELETE answers 200 with an OperationOutcome.
        created = not stored.deleted and (method == "POST" or stored.version == 1)
        entry["response"] = {"status": "201" if created else "200",
                             "etag": stored.etag,
                             "lastModified": format_instant(stored.last_updated)}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                              "meta": {"lastUpdated": format_instant(utc_now())},
                              "type": "history", "total": total,
                              "link": [{"relation": "self", "url": self_url}]}
    if count and offset + count < total:
        bundle["link"].append({"relation": "next",
                               "url": _with_offset(self_url, count, offset + count)})
    if count and offset > 0:
        bundle["link"].append({"relation": "previous",
                               "url": _with_offset(self_url, count, max(0, offset - count))})
    if entries:
        bundle["entry"] = entries
    return bundle
