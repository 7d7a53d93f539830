"""FHIR interactions, independent of Flask so that HTTP routes and Bundle entries share them.

Each function takes a Repository (already inside a transaction) and a FhirRequest, and
returns a FhirResult: status, body and headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.fhir import bundles
from app.outcome import (
    BadRequest,
    Conflict,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    information,
)
from app.search.dates import InvalidDate, parse_range
from app.search.engine import run_search
from app.search.query import MAX_INT, SearchLimits, parse_query
from app.search.registry import READ_ONLY_TYPES, SUPPORTED_TYPES
from app.search.variants import SearchVariant, recognised
from app.storage import locks
from app.storage.hooks import ConditionalEvent, HistoryEvent, ReadEvent, SearchEvent
from app.storage.repository import Repository, Stored, new_id


@dataclass
class FhirRequest:
    method: str
    resource_type: str | None = None
    resource_id: str | None = None
    version: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    if_match: str | None = None
    if_none_exist: str | None = None
    prefer_return: str = "representation"
    strict: bool = False
    # Information for the client about how the server treated its request (e.g. an id it
    # ignored), returned in the OperationOutcome when one is asked for.
    notes: list[str] = field(default_factory=list)
    # The URL the client asked, as a searchset's self link names it.
    self_url: str | None = None


@dataclass
class FhirResult:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stored: Stored | None = None
    notes: list[str] = field(default_factory=list)
    raw: bytes | None = None  # a body already serialised (search variants), instead of body

    def resource(self) -> dict[str, Any] | None:
        return orjson.loads(self.raw) if self.raw is not None else self.body


def check_type(resource_type: str | None) -> str:
    if resource_type not in SUPPORTED_TYPES:
        raise NotFound(f"Resource type '{resource_type}' is not supported by this server",
                       code="not-supported")
    return resource_type


def check_writable(resource_type: str | None) -> str:
    resource_type = check_type(resource_type)
    if resource_type in READ_ONLY_TYPES:
        raise MethodNotAllowed(f"{resource_type} resources are written by the server only",
                               headers={"Allow": "GET"})
    return resource_type


def parse_version(etag: str) -> int:
    """`W/"3"`, `"3"` or `3` → 3."""
    value = etag.strip()
    value = value[2:] if value.startswith("W/") else value
    value = value.strip('"')
    if not value.isdecimal() or int(value) > MAX_INT:
        raise BadRequest(f"Malformed ETag '{etag}': expected W/\"<version>\"")
    return int(value)


def parse_query_string(raw: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(raw.lstrip("?"), keep_blank_values=True)


def _version_headers(repo: Repository, stored: Stored) -> dict[str, str]:
    base = repo.settings.fhir_base_url
    return {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Location": f"{base}/{stored.resource_type}/{stored.resource_id}/_history/"
                    f"{stored.version}",
    }


def written(repo: Repository, req: FhirRequest, stored: Stored, status: int,
             message: str) -> FhirResult:
    headers = _version_headers(repo, stored)
    if req.prefer_return == "minimal":
        body = None
    elif req.prefer_return == "OperationOutcome":
        body = information(message, *req.notes)
    else:
        body = stored.as_dict()
    return FhirResult(status, body, headers, stored, list(req.notes))


def body_for(req: FhirRequest, resource_type: str) -> dict[str, Any]:
    body = req.body
    if body is None:
        raise BadRequest("A resource body is required", code="required")
    if not isinstance(body, dict):
        raise BadRequest("The resource must be a JSON object", code="structure")
    if body.get("resourceType") != resource_type:
        raise BadRequest(f"The body is a {body.get('resourceType')}, the URL expects a "
                         f"{resource_type}", code="invalid", expression=["resourceType"])
    return body


def creation_body(req: FhirRequest, resource_type: str) -> dict[str, Any]:
    """The body of a create; R4 ignores its id, and so does the server, saying so."""
    body = body_for(req, resource_type)
    if body.get("id") is not None:
        req.notes.append(f"The id '{body['id']}' of the body was ignored: the server assigns "
                         "the id of a created resource")
    return body


# -- read ------------------------------------------------------------------------------------

def read(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_type(req.resource_type)
    assert req.resource_id is not None
    if req.version is not None:
        if not req.version.isdecimal() or int(req.version) > MAX_INT:
            raise NotFound(f"Version '{req.version}' is not known")
        stored = repo.vread(resource_type, req.resource_id, int(req.version))
    else:
        stored = repo.read(resource_type, req.resource_id)
    event = ReadEvent(resource_type, stored)
    for interceptor in repo.interceptors:
        interceptor.before_read(repo, event)
    headers = _version_headers(repo, stored)
    headers.pop("Location")
    headers["Content-Location"] = (f"{repo.settings.fhir_base_url}/{resource_type}/"
                                   f"{stored.resource_id}/_history/{stored.version}")
    for interceptor in repo.interceptors:
        interceptor.after_read(repo, event)
    return FhirResult(200, stored.as_dict(), headers, stored)


def search(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_type(req.resource_type)
    variant = recognised(repo.search_variants, resource_type, req.params)
    if variant is not None:
        repo.settle()  # variants read the SAS projections, which writes update deferred
        self_url = req.self_url or f"{repo.settings.fhir_base_url}/{resource_type}"
        return FhirResult(200, raw=variant.answer(repo, resource_type, req.params,
                                                  strict=req.strict, self_url=self_url))
    event = SearchEvent(resource_type, list(req.params))
    for interceptor in repo.interceptors:
        interceptor.before_search(repo, event)
    query = parse_query(resource_type, event.params, strict=req.strict,
                        limits=SearchLimits.of(repo.settings))
    result = run_search(repo, query)
    event.matches, event.included = result.matches, result.included
    for interceptor in repo.interceptors:
        interceptor.after_search(repo, event)
    result.included = event.included
    return FhirResult(200, bundles.searchset(result, repo.settings.fhir_base_url))


def single_statement(variants: Sequence[SearchVariant], req: FhirRequest) -> bool:
    """Whether this search is answered by one SQL statement (no transaction needed)."""
    variant = recognised(variants, req.resource_type or "", req.params)
    return variant is not None and variant.single_statement


def scoped(repo: Repository, resource_type: str, body: dict[str, Any] | None,
           raw_query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The criteria of a conditional write, plus those interceptors add for this body
    (e.g. SAS regulator accounts only match regulator accounts)."""
    if body is None:
        return raw_query
    event = ConditionalEvent(resource_type, body)
    return [*raw_query, *(criterion for interceptor in repo.interceptors
                          for criterion in interceptor.conditional_criteria(event))]


def matches(repo: Repository, resource_type: str, raw_query: list[tuple[str, str]]) -> list[Stored]:
    """Resources matching a conditional interaction's criteria (unknown parameters fail).

    The criteria are locked until the transaction ends, so that identical conditional
    requests running in parallel take turns instead of both creating a resource.
    """
    query = parse_query(resource_type, raw_query, strict=True,
                        limits=SearchLimits.of(repo.settings))
    if not query.criteria:
        raise BadRequest("A conditional interaction needs at least one search criterion")
    locks.hold(repo.conn, resource_type + "?" + "&".join(
        f"{k}={v}" for k, v in sorted(query.used)))
    query.count, query.includes = 2, []
    return run_search(repo, query).matches


# -- create / update / delete ----------------------------------------------------------------

def create(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_writable(req.resource_type)
    body = body_for(req, resource_type)
    if req.if_none_exist:
        found = matches(repo, resource_type, scoped(
            repo, resource_type, body, parse_query_string(req.if_none_exist)))
        if len(found) > 1:
            raise PreconditionFailed("If-None-Exist matches several resources: "
                                     + ", ".join(f"{s.resource_type}/{s.resource_id}"
                                                 for s in found))
        if found:
            return written(repo, req, found[0], 200,
                            "A matching resource exists; nothing was created")
    stored = repo.create(resource_type, creation_body(req, resource_type))
    return written(repo, req, stored, 201, f"Created {resource_type}/{stored.resource_id}")


def update(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_writable(req.resource_type)
    body = body_for(req, resource_type)
    if req.resource_id is None:
        return _conditional_update(repo, req, resource_type, body)
    if body.get("id") is None:
        raise BadRequest("The resource in an update must carry its id", code="required",
                         expression=["id"])
    if body["id"] != req.resource_id:
        raise BadRequest(f"The body id '{body['id']}' does not match the URL id "
                         f"'{req.resource_id}'", expression=["id"])
    if_match = parse_version(req.if_match) if req.if_match else None
    stored, created = repo.update(resource_type, req.resource_id, body, if_match=if_match)
    return written(repo, req, stored, 201 if created else 200,
                    f"{'Created' if created else 'Updated'} {resource_type}/{req.resource_id}")


def server_assigns_ids(repo: Repository, resource_type: str, body: dict[str, Any]) -> bool:
    """Whether an interceptor says the body's id means nothing for this resource (SAS's
    regulator accounts: the kit sends a fixed or random id, the identifier decides)."""
    event = ConditionalEvent(resource_type, body)
    return any(interceptor.assigns_ids(event) for interceptor in repo.interceptors)


@dataclass(frozen=True)
class ConditionalTarget:
    resource_id: str
    exists: bool  # a resource matched the criteria


def conditional_target(repo: Repository, resource_type: str, body: dict[str, Any],
                       criteria: list[tuple[str, str]], notes: list[str]) -> ConditionalTarget:
    """The resource a conditional update writes (R4 §3.1.0.4.3): the one match; with no
    match, the body's id (update as create) or a new one. Notes what it ignored."""
    found = matches(repo, resource_type, scoped(repo, resource_type, body, criteria))
    if len(found) > 1:
        raise PreconditionFailed("The conditional update matches several resources: "
                                 + ", ".join(f"{s.resource_type}/{s.resource_id}"
                                             for s in found))
    given = body.get("id")
    if given is not None and server_assigns_ids(repo, resource_type, body):
        if not found or found[0].resource_id != given:
            notes.append(f"The id '{given}' of the body was ignored: the server assigns the "
                         f"ids of these {resource_type} resources and the search criteria "
                         "choose the one to update")
        given = None
    if found:
        target = found[0].resource_id
        if given not in (None, target):
            raise BadRequest(f"The body id '{given}' is not the id of the matching resource "
                             f"'{target}'", expression=["id"])
        return ConditionalTarget(target, True)
    if given is None:
        return ConditionalTarget(new_id(), False)
    existing = repo.find(resource_type, str(given))
    if existing is not None and not existing.deleted:
        raise Conflict(f"No {resource_type} matches the criteria, and the body's id names "
                       f"{resource_type}/{given}, which exists but does not match them: "
                       "nothing was written", expression=["id"])
    return ConditionalTarget(str(given), False)


def _conditional_update(repo: Repository, req: FhirRequest, resource_type: str,
                        body: dict[str, Any]) -> FhirResult:
    target = conditional_target(repo, resource_type, body, req.params, req.notes)
    if_match = parse_version(req.if_match) if req.if_match else None
    stored, created = repo.update(resource_type, target.resource_id,
                                  {**body, "id": target.resource_id}, if_match=if_match)
    verb = "Created" if created else "Updated"
    return written(repo, req, stored, 201 if created else 200,
                   f"{verb} {resource_type}/{target.resource_id}")


def delete(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_writable(req.resource_type)
    if req.resource_id is None:
        found = matches(repo, resource_type, req.params)
        if len(found) > 1:
            raise PreconditionFailed("The conditional delete matches several resources")
        if not found:
            return FhirResult(200, information("No resource matched; nothing was deleted"))
        resource_id = found[0].resource_id
    else:
        resource_id = req.resource_id
        if repo.find(resource_type, resource_id) is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
    stored = repo.delete(resource_type, resource_id)
    headers = {"ETag": stored.etag} if stored else {}
    return FhirResult(200, information(f"Deleted {resource_type}/{resource_id}"), headers,
                      stored)


# -- history ---------------------------------------------------------------------------------

def history(repo: Repository, req: FhirRequest, self_url: str) -> FhirResult:
    if req.resource_type is not None:
        check_type(req.resource_type)
    event = HistoryEvent(req.resource_type, req.resource_id)
    for interceptor in repo.interceptors:
        interceptor.before_history(repo, event)
    if req.resource_type and req.resource_id and repo.find(req.resource_type,
                                                           req.resource_id) is None:
        raise NotFound(f"{req.resource_type}/{req.resource_id} is not known")
    params = dict(req.params)
    since = None
    if params.get("_since"):
        try:
            since = parse_range(params["_since"], repo.settings.default_timezone)[0]
        except InvalidDate as exc:
            raise BadRequest(f"Invalid _since: {exc}") from exc
    count = min(_non_negative(params, "_count", repo.settings.default_page_size),
                repo.settings.max_page_size)
    offset = _non_negative(params, "_offset", 0)
    # The audit log is searchable on its own; it does not belong to the system history.
    total, versions = repo.history(req.resource_type, req.resource_id, since=since,
                                   count=count, offset=offset, excluded_types=READ_ONLY_TYPES)
    return FhirResult(200, bundles.history(total, versions, repo.settings.fhir_base_url,
                                           self_url, count, offset))


def _non_negative(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdecimal() or int(raw) > MAX_INT:
        raise BadRequest(f"{name} must be a non-negative integer, got '{raw}'")
    return int(raw)

