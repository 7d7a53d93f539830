"""Every error under /fhir answers an OperationOutcome: no HTML pages, no stack traces."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.fhir.errors import FhirError, Issue, operation_outcome
from app.fhir.negotiation import fhir_response

log = logging.getLogger(__name__)

ISSUE_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def _outcome(status: int, code: str, diagnostics: str) -> Response:
    return fhir_response(operation_outcome([Issue(code, diagnostics)]), status,
                         "application/fhir+json", False)


def install(app: Flask) -> None:
    @app.errorhandler(FhirError)
    def fhir_error(error: FhirError) -> Response:
        # Raised outside the FHIR blueprint's own handler (e.g. by app-wide hooks).
        return fhir_response(error.outcome(), error.status, "application/fhir+json", False,
                             error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | HTTPException:
        if not request.path.startswith("/fhir"):
            return error
        status = error.code or 500
        response = _outcome(status, ISSUE_CODES.get(status, "processing"),
                            error.description or error.name)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value  # e.g. Allow on 405
        return response

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError) -> Response:
        log.error("Database error on %s %s: %s", request.method, request.path, error.orig)
        return _outcome(503, "transient", "The database is temporarily unavailable; retry")

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # Logged in full for operators; the client only learns that it failed.
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return _outcome(500, "exception", "Internal server error")
