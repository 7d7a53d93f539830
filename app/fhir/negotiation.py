"""Content negotiation: which JSON flavour to answer, `_format`, `_pretty`, body parsing."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Request, Response

from app.fhir.hardening import check_depth
from app.outcome import BadRequest, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
# `application/json+fhir` is the DSTU2-era name that the SAS platform still sends.
JSON_TYPES = (FHIR_JSON, "application/json+fhir", "application/json")
FORM_TYPE = "application/x-www-form-urlencoded"  # POST _search only
XML_TYPES = ("application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml", "xml")
FORMAT_ALIASES = {"json": FHIR_JSON, "application/json": "application/json",
                  "application/fhir+json": FHIR_JSON, "application/json+fhir":
                  "application/json+fhir", "html": FHIR_JSON, "text/html": FHIR_JSON}


def response_type(request: Request) -> str:
    """The media type to answer with; 406 for XML, which this server does not produce."""
    requested = request.args.get("_format")
    if requested:
        requested = requested.strip().lower().replace(" ", "+")  # '+' arrives as a space
        if requested in FORMAT_ALIASES:
            return FORMAT_ALIASES[requested]
        if requested in XML_TYPES:
            raise NotAcceptable("XML is not supported by this server; use _format=json")
        raise NotAcceptable(f"Unknown _format '{requested}'")
    accept = request.accept_mimetypes
    if not accept.provided:
        return FHIR_JSON
    for mimetype, _quality in accept:
        base = mimetype.split(";")[0].strip().lower()
        if base in JSON_TYPES:
            return base
        if base in {"*/*", "application/*", "text/html", "text/*"}:
            return FHIR_JSON
    if any(m.split(";")[0].strip().lower() in XML_TYPES for m, _ in accept):
        raise NotAcceptable("XML is not supported by this server; ask for application/fhir+json")
    raise NotAcceptable(f"Cannot answer in any of: {accept}")


def wants_pretty(request: Request) -> bool:
    return request.args.get("_pretty", "").lower() == "true"


def dump(body: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)


def fhir_response(body: Any, status: int, media_type: str, pretty: bool,
                  headers: dict[str, str] | None = None) -> Response:
    payload = b"" if body is None else (body if isinstance(body, bytes) else dump(body, pretty))
    response = Response(payload, status=status,
                        content_type=f"{media_type}; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def check_body_type(request: Request, accepted: tuple[str, ...] = JSON_TYPES) -> None:
    """415 naming the accepted media types unless the body is one of them.

    A body sent without any Content-Type is taken as what the endpoint accepts (some clients
    omit it); its content is checked anyway."""
    content_type = (request.mimetype or "").lower()
    if not content_type or content_type in accepted:
        return
    what = "XML bodies are" if content_type in XML_TYPES else f"Content-Type '{content_type}' is"
    hint = "" if FORM_TYPE in accepted else f" ({FORM_TYPE} only for POST [type]/_search)"
    raise UnsupportedMediaType(f"{what} not supported here; send {_listed(accepted)}{hint}")


def _listed(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]


def parse_body(request: Request) -> dict[str, Any]:
    """The JSON object of a request body, or a 400/415 OperationOutcome."""
    check_body_type(request)
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("The request body is empty", code="required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="structure") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object (a FHIR resource)", code="structure")
    check_depth(body)
    if not isinstance(body.get("resourceType"), str):
        raise BadRequest("The body has no resourceType", code="required",
                         expression=["resourceType"])
    return body
