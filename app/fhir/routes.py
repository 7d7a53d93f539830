"""Routing: map FHIR REST URLs to interactions, and turn results into HTTP responses."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import orjson
from flask import Blueprint, Response, request

from app.auth import refusals
from app.auth.gate import caller_label, principal_of_request
from app.fhir import bulk_jobs, bulk_load, capability, interactions, transactions, validate
from app.fhir.interactions import FhirRequest, FhirResult
from app.fhir.negotiation import (
    FORM_TYPE,
    check_body_type,
    dump,
    fhir_response,
    parse_body,
    response_type,
    wants_pretty,
)
from app.outcome import BadRequest, FhirError, MethodNotAllowed, NotFound, information
from app.state import current_state

fhir = Blueprint("fhir", __name__, url_prefix="/fhir")

PREFER_RETURN = {"minimal", "representation", "OperationOutcome"}
# RFC 3986 query characters, and `%` so that what the client encoded stays encoded.
QUERY_SAFE = "%-._~!$&'()*+,;=:@/?"


def _prefer(name: str) -> str | None:
    for part in request.headers.get("Prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def _build_request(resource_type: str | None = None, resource_id: str | None = None,
                   version: str | None = None, with_body: bool = False) -> FhirRequest:
    prefer_return = _prefer("return") or "representation"
    if prefer_return not in PREFER_RETURN:
        raise BadRequest(f"Unsupported Prefer: return={prefer_return}")
    handling = _prefer("handling") or "lenient"
    params = [(k, v) for k, v in request.args.items(multi=True)]
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        params.extend(request.form.items(multi=True))
    return FhirRequest(
        method=request.method, resource_type=resource_type, resource_id=resource_id,
        version=version, params=params, body=parse_body(request) if with_body else None,
        if_match=request.headers.get("If-Match"),
        if_none_exist=request.headers.get("If-None-Exist"),
        prefer_return=prefer_return, strict=handling == "strict")


def _respond(result: FhirResult) -> Response:
    pretty = wants_pretty(request)
    if result.raw is not None:  # already serialised (a search variant)
        body: object = dump(orjson.loads(result.raw), True) if pretty else result.raw
    else:
        body = result.body
    return fhir_response(body, result.status, response_type(request), pretty, result.headers)


def client_description() -> str:
    """Who is calling, as recorded on each version written and in AuditEvents."""
    principal = principal_of_request()
    if principal is None:
        return f"unauthenticated {caller_label()}"
    return principal.describe()


def _run(action: Callable[..., FhirResult], req: FhirRequest, *, write: bool,
         autocommit: bool = False) -> Response:
    state = current_state()
    who, address = client_description(), request.remote_addr
    scope = (state.writing(who, address) if write
             else state.reading(who, address, autocommit=autocommit))
    with scope as repo:
        result = action(repo, req)
    return _respond(result)


@fhir.errorhandler(FhirError)
def _fhir_error(error: FhirError) -> Response:
    if error.status in (401, 403):
        refusals.record(current_state(), client_description(), request, error)
    try:
        media_type = response_type(request)
    except FhirError:
        media_type = "application/fhir+json"
    return fhir_response(error.outcome(), error.status, media_type, wants_pretty(request),
                         error.headers)


@fhir.get("/metadata")
def metadata() -> Response:
    response_type(request)
    return _respond(FhirResult(200, capability.capability_statement()))


@fhir.post("")
@fhir.post("/")
def bundle() -> Response:
    if request.mimetype in bulk_load.NDJSON_TYPES:
        return _bulk_load()
    req = _build_request(with_body=True)
    assert req.body is not None
    prefer = _prefer("return") or "minimal"
    result = transactions.process(current_state(), req.body, prefer, client_description(),
                                  request.remote_addr)
    return _respond(FhirResult(200, result))


def _bulk_load() -> Response:
    """NDJSON: one resource per line, read as it arrives, one transaction for the body."""
    state = current_state()
    media_type = response_type(request)
    request.max_content_length = state.settings.max_bulk_request_bytes
    if _prefer("respond-async") is not None:
        job_id = bulk_jobs.submit(state, request.stream, client_description(),
                                  principal_of_request(), request.remote_addr)
        return fhir_response(
            information(f"Accepted: the worker loads the file; see {_job_url(job_id)}"), 202,
            media_type, wants_pretty(request), {"Content-Location": _job_url(job_id)})
    report = bulk_load.load(state, request.stream, client_description(), request.remote_addr)
    if report.lines == 0:
        raise BadRequest("The NDJSON body holds no resource", code="required")
    return fhir_response(report.outcome(), report.status, media_type, wants_pretty(request))


def _job_url(job_id: str) -> str:
    return f"{current_state().settings.fhir_base_url}/_async/{quote(job_id)}"


@fhir.route("/_async/<job_id>", methods=["GET", "DELETE"])
def async_job(job_id: str) -> Response:
    """The status URL of an asynchronous bulk load (FHIR R4 asynchronous pattern): 202
    while it waits or runs, then 200 with the load's answer; DELETE cancels."""
    state = current_state()
    media_type = response_type(request)
    pretty = wants_pretty(request)
    job = bulk_jobs.find(state, job_id, client_description())
    if job is None or job.status == bulk_jobs.CANCELLED:
        raise NotFound(f"No bulk load {job_id} (unknown, cancelled, or sent by another client)")
    if request.method == "DELETE":
        bulk_jobs.cancel(state, job_id)
        said = ("its answer is forgotten (what it loaded stays)" if job.status == bulk_jobs.DONE
                else "cancelled; nothing of it is kept")
        return fhir_response(information(f"Bulk load {job_id}: {said}"), 202, media_type,
                             pretty)
    if job.status != bulk_jobs.DONE:
        progress = f"{job.status}: {job.lines_read} lines of {job.size} bytes read"
        return fhir_response(information(f"Bulk load {job_id} {progress}"), 202, media_type,
                             pretty, {"X-Progress": progress, "Retry-After": "2"})
    status = job.answer_status or 500
    answer = {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {
        "status": f"{status} {transactions.REASONS.get(status, '')}".strip(),
        "outcome": job.answer}}]}
    return fhir_response(answer, 200, media_type, pretty)


@fhir.get("/_history")
def system_history() -> Response:
    req = _build_request()
    return _run(lambda repo, r: interactions.history(repo, r, request.url), req, write=False)


@fhir.route("/<resource_type>", methods=["GET", "POST", "PUT", "DELETE"])
def type_level(resource_type: str) -> Response:
    interactions.check_type(resource_type)
    if request.method == "GET":
        return _search(resource_type)
    if request.method == "POST":
        req = _build_request(resource_type, with_body=True)
        return _run(interactions.create, req, write=True)
    if request.method == "PUT":
        req = _build_request(resource_type, with_body=True)
        return _run(interactions.update, req, write=True)
    return _run(interactions.delete, _build_request(resource_type), write=True)


@fhir.post("/<resource_type>/_search")
def search_by_post(resource_type: str) -> Response:
    interactions.check_type(resource_type)
    check_body_type(request, (FORM_TYPE,))
    return _search(resource_type)


@fhir.post("/<resource_type>/$validate")
def validate_type(resource_type: str) -> Response:
    validate.check_validatable(resource_type)
    return _validate(resource_type)


@fhir.post("/<resource_type>/<resource_id>/$validate")
def validate_instance(resource_type: str, resource_id: str) -> Response:
    interactions.check_type(resource_type)
    return _validate(resource_type, resource_id)


def _validate(resource_type: str, resource_id: str | None = None) -> Response:
    # mode=delete needs no resource: an empty body is allowed there.
    has_body = bool(request.get_data(cache=True).strip())
    req = _build_request(resource_type, resource_id, with_body=has_body)
    return _run(validate.validate, req, write=False)


def _search(resource_type: str) -> Response:
    req = _build_request(resource_type)
    state = current_state()
    req.self_url = _as_received(state.settings.fhir_base_url)
    # A search variant answered by one statement needs no BEGIN/COMMIT round trips.
    one_statement = interactions.single_statement(state.search_variants, req)
    return _run(interactions.search, req, write=False, autocommit=one_statement)


def _as_received(base: str) -> str:
    """This request's URL under our public base, its query exactly as the client encoded it
    (SAS's test kit compares the self link with its request), made a valid URI: characters
    RFC 3986 does not allow in a query, such as a raw `|`, are percent-encoded."""
    query = quote(request.query_string.decode("latin-1"), safe=QUERY_SAFE)
    path = request.path.removeprefix(fhir.url_prefix or "")
    return f"{base}{path}" + (f"?{query}" if query else "")


@fhir.get("/<resource_type>/_history")
def type_history(resource_type: str) -> Response:
    req = _build_request(resource_type)
    return _run(lambda repo, r: interactions.history(repo, r, request.url), req, write=False)


@fhir.route("/<resource_type>/<resource_id>", methods=["GET", "PUT", "DELETE", "POST"])
def instance(resource_type: str, resource_id: str) -> Response:
    interactions.check_type(resource_type)
    if request.method == "GET":
        return _run(interactions.read, _build_request(resource_type, resource_id), write=False)
    if request.method == "PUT":
        req = _build_request(resource_type, resource_id, with_body=True)
        return _run(interactions.update, req, write=True)
    if request.method == "DELETE":
        return _run(interactions.delete, _build_request(resource_type, resource_id),
                    write=True)
    if resource_id.startswith("$"):
        raise NotFound(f"Operation {resource_id} is not supported on {resource_type}; "
                       "see the CapabilityStatement (GET /fhir/metadata)", code="not-supported")
    raise MethodNotAllowed(f"POST is not allowed on {resource_type}/{resource_id}")


@fhir.get("/<resource_type>/<resource_id>/_history")
def instance_history(resource_type: str, resource_id: str) -> Response:
    req = _build_request(resource_type, resource_id)
    return _run(lambda repo, r: interactions.history(repo, r, request.url), req, write=False)


@fhir.get("/<resource_type>/<resource_id>/_history/<version>")
def vread(resource_type: str, resource_id: str, version: str) -> Response:
    req = _build_request(resource_type, resource_id, version)
    return _run(interactions.read, req, write=False)
