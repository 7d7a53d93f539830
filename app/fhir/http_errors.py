"""Every error under /fhir answers an OperationOutcome: no HTML pages, no stack traces."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from app.db_errors import DatabaseFault, classify
from app.fhir.negotiation import fhir_response
from app.outcome import FhirError, Issue, operation_outcome

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

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # Logged in full for operators; the client only learns that it failed.
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return _outcome(500, "exception", "Internal server error")

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def database_error(error: Exception) -> Response:
        fault = classify(error)
        cause = getattr(error, "orig", None) or error
        if fault is DatabaseFault.UNAVAILABLE:
            log.error("Database unavailable on %s %s: %s", request.method, request.path, cause)
            return _outcome(503, "transient", "The database is temporarily unavailable; retry")
        if fault is DatabaseFault.TOO_COMPLEX:
            log.warning("Query refused by the database on %s %s: %s", request.method,
                        request.path, cause)
            return _outcome(400, "too-costly", "The request is too complex for the database: "
                            "use fewer search values or parameters")
        return unexpected(error)
