"""gunicorn's own error answers as OperationOutcomes.

gunicorn refuses some requests before the application sees them (a request line over
`limit_request_line`: 414; too many or too large headers: 431; a malformed request: 400) and
writes an HTML page for them. `install()` makes it write the same answer as a FHIR
OperationOutcome in JSON; gunicorn.conf.py calls it in each worker (post_worker_init).
"""

from __future__ import annotations

import socket

import orjson
from gunicorn import util

from app.fhir.hardening import SECURITY_HEADERS
from app.outcome import Issue, operation_outcome

# gunicorn's maximum (`limit_request_line` above 8190 is read as 8190). The longest request
# SAS sends, the INT_R01 search for 25 practitioners fully percent-encoded, is about 1,520
# bytes; a search with FHIR_MAX_OR_VALUES (100) RPPS identifiers needs about 4,600.
LIMIT_REQUEST_LINE = 8190
ISSUE_CODES = {403: "forbidden", 414: "too-long", 431: "too-long", 500: "exception",
               501: "not-supported"}
HINTS = {414: "; send long searches as POST [type]/_search with a form body"}


def outcome_bytes(status: int, reason: str, message: str) -> bytes:
    """The full HTTP/1.1 answer gunicorn sends for a request it refused itself."""
    diagnostics = (message or reason) + HINTS.get(status, "")
    body = orjson.dumps(operation_outcome([Issue(ISSUE_CODES.get(status, "invalid"),
                                                 diagnostics)]))
    headers = {"Connection": "close", "Content-Type": "application/fhir+json; charset=utf-8",
               "Content-Length": str(len(body)), **SECURITY_HEADERS}
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error (same signature)."""
    util.write_nonblock(sock, outcome_bytes(status_int, reason, mesg))


def install() -> None:
    util.write_error = write_error


def post_worker_init(_worker: object) -> None:
    """gunicorn server hook (gunicorn.conf.py, deploy/gunicorn_tls.conf.py)."""
    install()
