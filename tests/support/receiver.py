"""A stand-in for the SAS platform: a real HTTPS server with mutual TLS, in a thread.

`SasReceiver(pki)`, with a `tests.support.pki.make_pki` PKI, listens on 127.0.0.1 (TLS >= 1.2,
client certificate required and checked against the test CA) and implements the FHIR
semantics of Appointment that SAS offers us:

- ``POST [base]/Appointment`` creates (201 + Location), whatever it holds: a duplicate POST
  makes a duplicate appointment, which is exactly what the tests must be able to see;
- ``PUT [base]/Appointment?identifier=system|value`` updates the one match (200), creates
  when there is none (201), answers 412 when there are several;
- ``PUT [base]/Appointment/{id}`` updates or creates with that id;
- ``GET [base]/Appointment?identifier=…`` searches.

Every request is recorded in order (method, path, parsed body, headers, the subject of the
client certificate, the status answered). Faults are queued and consumed one per request:
`fail` (a status without effect, 500 by default), `reject` (400 + OperationOutcome),
`slow` (apply, then sleep past the client's timeout before answering), `hold` (apply, then
wait until `release()`, then answer or cut the connection); `stop()` closes the port and
every open connection, `start()` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509

from tests.support.pki import Pki

FHIR_TYPES = {"application/fhir+json", "application/json+fhir", "application/json"}
Resource = dict[str, Any]


# -- what the receiver saw ----------------------------------------------------------------------

@dataclass
class Received:
    method: str
    path: str  # path and query string, as sent
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    client_subject: str | None
    arrived_at: float
    peer: tuple[str, int]  # the client's address and port: one per connection
    tls_version: str | None
    status: int | None = None  # what was answered (None: the answer could not be sent)
    applied: bool = False  # whether the request changed the stored appointments
    fault: str | None = None

    @property
    def identifier(self) -> str | None:
        """The `system|value` of the appointment concerned (from the URL or the body)."""
        if self.query.get("identifier"):
            return self.query["identifier"][0]
        identifiers = self.body.get("identifier") if isinstance(self.body, dict) else None
        if identifiers:
            return f"{identifiers[0].get('system')}|{identifiers[0].get('value')}"
        return None


@dataclass
class Fault:
    kind: str  # "status" | "slow" | "hold"
    status: int = 500
    body: Resource | None = None
    seconds: float = 0.0
    apply_first: bool = True
    retry_after: str | None = None
    drop: bool = False  # after the delay, cut the connection instead of answering


def outcome(diagnostics: str, code: str = "invalid") -> Resource:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}


@dataclass
class _Store:
    appointments: dict[str, Resource] = field(default_factory=dict)
    effects: list[tuple[str, str, int]] = field(default_factory=list)  # (action, id, version)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: SasReceiver) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the connection's own thread: a stalled or
        # refused client must not hold up the accept loop.
        request.settimeout(10)
        try:
            tls = self.owner.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.owner._handshake_failed(exc)
            return
        self.owner._connections.add(tls)
        try:
            super().finish_request(tls, client_address)
        finally:
            self.owner._connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # broken pipes of timed-out clients, connections cut by stop(): expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner._handle(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner._handle(self)

    def do_PUT(self) -> None:  # noqa: N802
        self.server.owner._handle(self)

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.owner._handle(self)

    def answer(self, status: int, body: Resource | None,
               headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/fhir+json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _subject(connection: Any) -> str | None:
    der = connection.getpeercert(binary_form=True) if hasattr(connection, "getpeercert") \
        else None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None


class SasReceiver:
    """`with SasReceiver(pki) as sas:` … `sas.base_url`, `sas.requests`, `sas.appointments`."""

    def __init__(self, pki: Pki, *, server_cert: Path | None = None,
                 server_key: Path | None = None, base_path: str = "/fhir",
                 require_client_cert: bool = True) -> None:
        self.pki = pki
        self.base_path = base_path.rstrip("/")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(server_cert or pki.server_cert,
                                     server_key or pki.server_key)
        self.context.load_verify_locations(cafile=str(pki.ca_cert))
        self.context.verify_mode = ssl.CERT_REQUIRED if require_client_cert \
            else ssl.CERT_OPTIONAL
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._requests: list[Received] = []
        self._faults: deque[Fault] = deque()
        self._store = _Store()
        self._released = threading.Event()
        self._holding = 0
        self._connections: set[Any] = set()
        self.handshake_failures: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.base_path}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    def start(self) -> SasReceiver:
        """Listen (again, on the same port after a stop)."""
        assert self._server is None, "already listening"
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server(("127.0.0.1", self.port), self)
                break
            except OSError:  # the port of a stopped receiver may linger a moment
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"sas-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (SAS is down)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.release()
        self.stop()

    def __enter__(self) -> SasReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults ---------------------------------------------------------------------------------

    def fail(self, times: int = 1, status: int = 500, retry_after: str | None = None) -> None:
        """Answer `status` (without effect) to the next `times` requests."""
        with self._lock:
            self._faults.extend(Fault("status", status=status, retry_after=retry_after,
                                      body=outcome(f"Simulated failure {status}", "exception"))
                                for _ in range(times))

    def reject(self, diagnostics: str = "Appointment.participant: unknown practitioner",
               times: int = 1, status: int = 400) -> Resource:
        """Answer 400 with an OperationOutcome (without effect) to the next requests."""
        body = outcome(diagnostics)
        with self._lock:
            self._faults.extend(Fault("status", status=status, body=body) for _ in range(times))
        return body

    def slow(self, seconds: float, times: int = 1, apply_first: bool = True) -> None:
        """Apply the next requests, then sleep `seconds` before answering."""
        with self._lock:
            self._faults.extend(Fault("slow", seconds=seconds, apply_first=apply_first)
                                for _ in range(times))

    def hold(self, times: int = 1, apply_first: bool = True, drop: bool = False) -> None:
        """Apply the next requests, then keep them unanswered until `release()` (and then
        answer, or with `drop` cut the connection without an answer)."""
        self._released.clear()
        with self._lock:
            self._faults.extend(Fault("hold", apply_first=apply_first, drop=drop)
                                for _ in range(times))

    def release(self) -> None:
        self._released.set()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- what was seen --------------------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def appointments(self) -> list[Resource]:
        """The appointments SAS holds now (deep copies)."""
        with self._lock:
            return json.loads(json.dumps(list(self._store.appointments.values())))

    @property
    def effects(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._store.effects)

    @property
    def holding(self) -> int:
        with self._lock:
            return self._holding

    def matching(self, system: str, value: str) -> list[Resource]:
        with self._lock:
            return [json.loads(json.dumps(a)) for a in self._store.appointments.values()
                    if _holds(a, system, value)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        if not self.wait_for(lambda: len(self._requests) >= count, timeout):
            raise AssertionError(f"the receiver got {len(self._requests)} requests, "
                                 f"expected {count} within {timeout}s")
        return self.requests

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._store = _Store()
            self.handshake_failures.clear()

    # -- serving --------------------------------------------------------------------------------

    def _handshake_failed(self, exc: Exception) -> None:
        with self._lock:
            self.handshake_failures.append(f"{type(exc).__name__}: {exc}")
            self._lock.notify_all()

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        split = urlsplit(handler.path)
        record = Received(
            method=handler.command, path=handler.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k: v for k, v in handler.headers.items()}, body=parsed,
            client_subject=_subject(handler.connection), arrived_at=time.monotonic(),
            peer=tuple(handler.client_address[:2]),  # type: ignore[arg-type]
            tls_version=handler.connection.version())
        with self._lock:
            self._requests.append(record)
            fault = self._faults.popleft() if self._faults else None
            record.fault = fault.kind if fault else None
            self._lock.notify_all()
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(handler, record, fault.status, fault.body, headers)
            return
        if fault is not None and not fault.apply_first:
            self._delay(fault)
        status, body, headers = self._fhir(handler.command, split.path, record, raw)
        if fault is not None and fault.apply_first:
            self._delay(fault)
        if fault is not None and fault.drop:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(handler, record, status, body, headers)

    def _delay(self, fault: Fault) -> None:
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        elif fault.kind == "hold":
            with self._lock:
                self._holding += 1
                self._lock.notify_all()
            try:
                self._released.wait(60)
            finally:
                with self._lock:
                    self._holding -= 1

    def _send(self, handler: _Handler, record: Received, status: int, body: Resource | None,
              headers: dict[str, str] | None = None) -> None:
        try:
            handler.answer(status, body, headers)
        except OSError:
            handler.close_connection = True
            return  # the client gave up (timeout, killed): the answer is lost
        with self._lock:
            record.status = status
            self._lock.notify_all()

    def _fhir(self, method: str, path: str, record: Received, raw: bytes
              ) -> tuple[int, Resource | None, dict[str, str]]:
        if not path.startswith(self.base_path + "/"):
            return 404, outcome(f"Unknown path {path}", "not-found"), {}
        parts = path[len(self.base_path) + 1:].strip("/").split("/")
        if parts[0] != "Appointment" or len(parts) > 2:
            return 404, outcome(f"Unknown path {path}", "not-found"), {}
        if method == "GET":
            return 200, self._search(record.query), {}
        if method not in {"POST", "PUT"}:
            return 405, outcome(f"{method} is not supported", "not-supported"), {}
        media = (record.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media not in FHIR_TYPES:
            return 415, outcome(f"Unsupported media type {media!r}", "not-supported"), {}
        resource = record.body
        if not isinstance(resource, dict) or resource.get("resourceType") != "Appointment":
            return 400, outcome(f"An Appointment was expected, got {raw[:80]!r}"), {}
        with self._lock:
            if method == "POST" and len(parts) == 1:
                return self._create(record, resource, None)
            if method == "PUT" and len(parts) == 2:
                existing = self._store.appointments.get(parts[1])
                return (self._update(record, existing, resource) if existing
                        else self._create(record, resource, parts[1]))
            if method == "PUT" and record.query.get("identifier"):
                system, _, value = record.query["identifier"][0].partition("|")
                found = [a for a in self._store.appointments.values()
                         if _holds(a, system, value)]
                if len(found) > 1:
                    return 412, outcome(f"{len(found)} appointments match", "multiple-matches"), {}
                if found:
                    return self._update(record, found[0], resource)
                return self._create(record, resource, None)
        return 400, outcome("Unsupported interaction"), {}

    def _create(self, record: Received, resource: Resource, res_id: str | None
                ) -> tuple[int, Resource, dict[str, str]]:
        stored = dict(resource, id=res_id or str(uuid.uuid4()),
                      meta={**(resource.get("meta") or {}), "versionId": "1"})
        self._store.appointments[stored["id"]] = stored
        self._store.effects.append(("create", stored["id"], 1))
        record.applied = True
        location = f"{self.base_url}/Appointment/{stored['id']}/_history/1"
        return 201, stored, {"Location": location, "ETag": 'W/"1"'}

    def _update(self, record: Received, existing: Resource, resource: Resource
                ) -> tuple[int, Resource, dict[str, str]]:
        version = int(existing["meta"]["versionId"]) + 1
        stored = dict(resource, id=existing["id"],
                      meta={**(resource.get("meta") or {}), "versionId": str(version)})
        self._store.appointments[stored["id"]] = stored
        self._store.effects.append(("update", stored["id"], version))
        record.applied = True
        return 200, stored, {"ETag": f'W/"{version}"'}

    def _search(self, query: dict[str, list[str]]) -> Resource:
        with self._lock:
            found = list(self._store.appointments.values())
        for wanted in query.get("identifier", []):
            system, _, value = wanted.partition("|")
            found = [a for a in found if _holds(a, system, value)]
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                "entry": [{"resource": a, "search": {"mode": "match"}} for a in found]}


def _holds(appointment: Resource, system: str, value: str) -> bool:
    return any(i.get("value") == value and (not system or i.get("system") == system)
               for i in appointment.get("identifier") or [])
