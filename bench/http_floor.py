"""The HTTP floor: the transport alone, served by the same gunicorn as the application.

    gunicorn … bench.http_floor:app        (with BENCH_HTTP_FLOOR=answers.json)

`bench.run` records the application's answers during its single-client cases (status line
headers and body of every request path) and then serves them with this minimal WSGI
callable under the same gunicorn configuration (worker class and count, one TCP connection
per request) to the same clients, request paths and headers. Each request gets the bytes
the application sent for that path: same size, same headers, no Flask, no database. What the
application spends beyond this row is Flask, the hooks, the search and its serialisation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

ENVIRONMENT_VARIABLE = "BENCH_HTTP_FLOOR"
READY_PATH = "/fhir/metadata"  # what bench.run polls before measuring

# Set by gunicorn on every response, or hop-by-hop: never replayed.
_NOT_REPLAYED = frozenset({"server", "date", "connection", "content-length",
                           "transfer-encoding", "keep-alive"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Answer = tuple[str, list[tuple[str, str]], bytes]


def replayed_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The end-to-end headers of a recorded response (the server adds the others)."""
    return [(name, value) for name, value in headers if name.lower() not in _NOT_REPLAYED]


def save(path: Path, headers: list[tuple[str, str]], answers: dict[str, bytes]) -> None:
    """Write the recorded answers (bodies are the application's UTF-8 JSON)."""
    path.write_bytes(orjson.dumps({"headers": replayed_headers(headers),
                                   "answers": {k: v.decode() for k, v in answers.items()}}))


class HttpFloor:
    """Answers each known request target with its precomputed status line, headers, body."""

    def __init__(self, headers: list[tuple[str, str]], answers: dict[str, bytes]) -> None:
        def answer(body: bytes) -> Answer:
            return "200 OK", [*headers, ("Content-Length", str(len(body)))], body

        self.answers = {target: answer(body) for target, body in answers.items()}
        self.ready = answer(b"{}")
        self.missing: Answer = ("404 Not Found", [("Content-Length", "0")], b"")

    @classmethod
    def from_file(cls, path: Path) -> HttpFloor:
        data = orjson.loads(path.read_bytes())
        return cls([(str(k), str(v)) for k, v in data["headers"]],
                   {target: body.encode() for target, body in data["answers"].items()})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> list[bytes]:
        target = environ.get("RAW_URI") or _target(environ)  # RAW_URI: gunicorn's raw path
        status, headers, body = self.answers.get(target) or (
            self.ready if environ.get("PATH_INFO") == READY_PATH else self.missing)
        start_response(status, headers)
        return [body]


def _target(environ: dict[str, Any]) -> str:
    query = environ.get("QUERY_STRING")
    return str(environ.get("PATH_INFO", "")) + (f"?{query}" if query else "")


def _from_environment() -> HttpFloor:
    path = os.environ.get(ENVIRONMENT_VARIABLE)
    return HttpFloor.from_file(Path(path)) if path else HttpFloor([], {})


app = _from_environment()
