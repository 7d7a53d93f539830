"""`batch` and `transaction` Bundles.

A transaction is all-or-nothing: every entry runs on one Repository inside one database
transaction, in the order the specification requires (DELETE, POST, PUT, GET); references
to `urn:uuid:` fullUrls are rewritten to the ids resolved before anything is written.
A batch reports each entry's outcome on its own: its entries run together in one database
transaction when none of them fails after writing (the common case), else each in a
transaction of its own, as if they had been sent one by one.

Either way the entries go through the same interactions as REST calls, on one Repository
that writes set-based (app/storage/repository.py): the resources a Bundle updates or
deletes are read and locked in one statement up front, and its rows reach the database in
one statement per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import DBAPIError

from app.clock import format_instant
from app.fhir import interactions
from app.fhir.interactions import FhirRequest, FhirResult, parse_query_string
from app.outcome import BadRequest, FhirError, Issue, PreconditionFailed, information
from app.search.registry import SUPPORTED_TYPES
from app.state import AppState
from app.storage.repository import Repository, Stored, new_id

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
           422: "Unprocessable Entity", 500: "Internal Server Error"}


@dataclass
class Entry:
    index: int
    method: str
    request: FhirRequest
    full_url: str | None
    resolved_id: str | None = None
    existing: Stored | None = None  # conditional create that matched
    result: FhirResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_entry(index: int, raw: Any, base: str, prefer: str) -> Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise BadRequest(f"Bundle.entry[{index}] has no request",
                         expression=[f"Bundle.entry[{index}].request"])
    request = raw["request"]
    method = str(request.get("method", "")).upper()
    url = request.get("url")
    if method not in ORDER or not isinstance(url, str) or not url:
        raise BadRequest(f"Bundle.entry[{index}].request needs a method and a url",
                         expression=[f"Bundle.entry[{index}].request"])
    if raw.get("fullUrl") is not None and not isinstance(raw["fullUrl"], str):
        raise BadRequest(f"Bundle.entry[{index}].fullUrl must be a string",
                         expression=[f"Bundle.entry[{index}].fullUrl"])
    for key in ("ifMatch", "ifNoneExist"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise BadRequest(f"Bundle.entry[{index}].request.{key} must be a string",
                             expression=[f"Bundle.entry[{index}].request.{key}"])
    if url.startswith(base):
        url = url[len(base):]
    parts = urlsplit(url.lstrip("/"))
    segments = [s for s in parts.path.split("/") if s]
    req = FhirRequest(method=method, params=parse_query_string(parts.query),
                      body=raw.get("resource"), if_match=request.get("ifMatch"),
                      if_none_exist=request.get("ifNoneExist"), prefer_return=prefer,
                      self_url=f"{base.rstrip('/')}/{url.lstrip('/')}")
    if segments:
        req.resource_type = segments[0]
    if len(segments) >= 2 and segments[1] != "_search":
        req.resource_id = segments[1] if segments[1] != "_history" else None
    if len(segments) == 4 and segments[2] == "_history":
        req.version = segments[3]
    return Entry(index, method, req, raw.get("fullUrl"))


def _response(entry: Entry, result: FhirResult) -> dict[str, Any]:
    response: dict[str, Any] = {"status": f"{result.status} {REASONS.get(result.status, '')}"
                                .strip()}
    if result.stored is not None and entry.method in {"POST", "PUT", "PATCH"}:
        response["location"] = result.headers.get("Location")
    for header, key in (("ETag", "etag"), ("Last-Modified", "lastModified")):
        if header in result.headers:
            response[key] = result.headers[header]
    if result.stored is not None:
        response["lastModified"] = format_instant(result.stored.last_updated)
    out: dict[str, Any] = {"response": response}
    if entry.full_url:
        out["fullUrl"] = entry.full_url
    body = result.resource()
    if body is not None and (entry.method in {"GET", "HEAD"}
                             or entry.request.prefer_return != "minimal"):
        out["resource"] = body
    if result.notes:
        response["outcome"] = information(*result.notes)
    return out


def _error_response(error: FhirError) -> dict[str, Any]:
    return {"response": {"status": f"{error.status} {REASONS.get(error.status, '')}".strip(),
                         "outcome": error.outcome()}}


def execute(repo: Repository, entry: Entry, base: str) -> FhirResult:
    req = entry.request
    if entry.method in {"GET", "HEAD"}:
        if req.resource_id:
            return interactions.read(repo, req)
        if req.resource_type:
            return interactions.search(repo, req)
        raise BadRequest("GET entries must name a resource type")
    if entry.method == "DELETE":
        return interactions.delete(repo, req)
    if entry.method == "POST":
        if entry.existing is not None:
            return interactions.written(repo, req, entry.existing, 200,
                                         "A matching resource exists; nothing was created")
        resource_type = interactions.check_writable(req.resource_type)
        body = interactions.creation_body(req, resource_type)
        stored = repo.create(resource_type, body, resource_id=entry.resolved_id)
        return interactions.written(repo, req, stored, 201,
                                     f"Created {resource_type}/{stored.resource_id}")
    if entry.method == "PUT":
        if req.resource_id is None and entry.resolved_id is not None and req.body is not None:
            req.resource_id = entry.resolved_id
            req.body = {**req.body, "id": entry.resolved_id}
        return interactions.update(repo, req)
    raise BadRequest(f"{entry.method} entries are not supported", code="not-supported")


def _resolve_targets(repo: Repository, entries: list[Entry]) -> dict[str, str]:
    """Decide the id each creating entry will get; map urn:uuid fullUrls to references."""
    mapping: dict[str, str] = {}
    for entry in entries:
        req = entry.request
        if entry.method == "POST":
            resource_type = interactions.check_type(req.resource_type)
            if req.if_none_exist:
                found = interactions.matches(repo, resource_type, interactions.scoped(
                    repo, resource_type, req.body, parse_query_string(req.if_none_exist)))
                if len(found) > 1:
                    raise PreconditionFailed(
                        f"Bundle.entry[{entry.index}]: ifNoneExist matches several resources")
                entry.existing = found[0] if found else None
            entry.resolved_id = entry.existing.resource_id if entry.existing else new_id()
        elif entry.method == "PUT" and req.resource_id is None and req.params:
            resource_type = interactions.check_type(req.resource_type)
            body = interactions.body_for(req, resource_type)
            try:
                entry.resolved_id = interactions.conditional_target(
                    repo, resource_type, body, req.params, req.notes).resource_id
            except FhirError as error:
                error.issues = [Issue(i.code, f"Bundle.entry[{entry.index}]: {i.diagnostics}",
                                      i.severity, i.expression) for i in error.issues]
                raise
        elif entry.method == "PUT":
            entry.resolved_id = req.resource_id
        if entry.full_url and entry.resolved_id and req.resource_type:
            mapping[entry.full_url] = f"{req.resource_type}/{entry.resolved_id}"
    _refuse_overlaps(entries)
    return mapping


def _refuse_overlaps(entries: list[Entry]) -> None:
    """A transaction may not touch the same resource twice (FHIR R4 §3.1.0.11.2)."""
    seen: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry.method not in {"DELETE", "POST", "PUT", "PATCH"}:
            continue
        resource_id = entry.resolved_id or entry.request.resource_id
        if entry.request.resource_type is None or resource_id is None:
            continue
        key = (entry.request.resource_type, resource_id)
        if key in seen:
            raise BadRequest(f"Bundle.entry[{seen[key]}] and Bundle.entry[{entry.index}] both "
                             f"change {key[0]}/{key[1]}; a transaction may change a resource "
                             "only once", expression=[f"Bundle.entry[{entry.index}]"])
        seen[key] = entry.index


def rewrite_references(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (mapping.get(v, v) if k == "reference" and isinstance(v, str)
                    else rewrite_references(v, mapping)) for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite_references(item, mapping) for item in node]
    return node


def _entries(bundle: dict[str, Any], base: str, prefer: str) -> list[Entry]:
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise BadRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
    return [parse_entry(i, raw, base, prefer) for i, raw in enumerate(raw_entries)]


def transaction(state: AppState, bundle: dict[str, Any], prefer: str,
                author: str | None = None, address: str | None = None) -> dict[str, Any]:
    base = state.settings.fhir_base_url
    entries = _entries(bundle, base, prefer)
    with state.writing(author, address) as repo:
        mapping = _resolve_targets(repo, entries)
        for entry in entries:
            if mapping and entry.request.body is not None:  # no fullUrl to resolve: no walk
                entry.request.body = rewrite_references(entry.request.body, mapping)
        repo.prefetch(targets(entries))
        for entry in sorted(entries, key=lambda e: (ORDER[e.method], e.index)):
            try:
                entry.result = execute(repo, entry, base)
            except FhirError as error:
                error.issues[0].diagnostics = (f"Bundle.entry[{entry.index}]: "
                                               f"{error.issues[0].diagnostics}")
                raise
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [_response(e, e.result) for e in entries if e.result is not None]}


def targets(entries: list[Entry]) -> list[tuple[str, str]]:
    """The existing resources these entries may update or delete (to lock them at once)."""
    found = []
    for entry in entries:
        resource_id = entry.resolved_id or entry.request.resource_id
        if entry.method in {"PUT", "DELETE"} and entry.request.resource_type and resource_id:
            found.append((entry.request.resource_type, resource_id))
    return found


class _Separately(Exception):
    """A batch entry failed after writing: the batch runs again entry by entry."""


def batch(state: AppState, bundle: dict[str, Any], prefer: str,
          author: str | None = None, address: str | None = None) -> dict[str, Any]:
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise BadRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
    try:
        responses = _batch_together(state, raw_entries, prefer, author, address)
    except (_Separately, FhirError, DBAPIError):
        # Something failed that only a unit of its own can tell apart (a write that broke
        # a rule at commit, a conflict with a concurrent request): nothing was kept, and
        # each entry now runs alone and answers for itself.
        responses = [_batch_entry(state, index, raw, prefer, author, address)
                     for index, raw in enumerate(raw_entries)]
    return {"resourceType": "Bundle", "type": "batch-response", "entry": responses}


def _batch_together(state: AppState, raw_entries: list[Any], prefer: str,
                    author: str | None, address: str | None) -> list[dict[str, Any]]:
    """Every entry in one unit of work; an entry that fails before writing anything
    answers its error and the others go on."""
    base = state.settings.fhir_base_url
    responses: list[dict[str, Any]] = []
    with state.writing(author, address) as repo:
        parsed: list[Entry | FhirError] = []
        for index, raw in enumerate(raw_entries):
            try:
                parsed.append(parse_entry(index, raw, base, prefer))
            except FhirError as error:
                parsed.append(error)
        repo.prefetch(targets([e for e in parsed if isinstance(e, Entry)
                                and e.request.resource_type in SUPPORTED_TYPES]))
        for entry in parsed:
            if isinstance(entry, FhirError):
                responses.append(_error_response(entry))
                continue
            written = repo.written
            try:
                _run_batch_entry(repo, entry, base)
            except FhirError as error:
                if repo.written != written:
                    raise _Separately from error
                responses.append(_error_response(error))
                continue
            responses.append(_response(entry, entry.result))
    return responses


def _batch_entry(state: AppState, index: int, raw: Any, prefer: str, author: str | None,
                 address: str | None) -> dict[str, Any]:
    """One batch entry in a unit of work of its own."""
    base = state.settings.fhir_base_url
    try:
        entry = parse_entry(index, raw, base, prefer)
        with state.writing(author, address) as repo:
            _run_batch_entry(repo, entry, base)
    except FhirError as error:
        return _error_response(error)
    assert entry.result is not None
    return _response(entry, entry.result)


def _run_batch_entry(repo: Repository, entry: Entry, base: str) -> None:
    if entry.method == "POST" and entry.request.if_none_exist:
        _resolve_targets(repo, [entry])
    entry.result = execute(repo, entry, base)


def process(state: AppState, bundle: dict[str, Any], prefer: str,
            author: str | None = None, address: str | None = None) -> dict[str, Any]:
    if bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a Bundle", expression=["resourceType"])
    kind = bundle.get("type")
    if kind == "transaction":
        return transaction(state, bundle, prefer, author, address)
    if kind == "batch":
        return batch(state, bundle, prefer, author, address)
    raise BadRequest(f"Bundle.type must be batch or transaction, not '{kind}'",
                     expression=["Bundle.type"])
