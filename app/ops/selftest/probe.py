"""How the self-test talks to a deployment: HTTP calls the way the ANS kit makes them (a
new connection, and TLS handshake, per call; timed until the answer is parsed), and bare
TLS handshakes to probe protocol versions and the server certificate."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

# What the kit's FHIR client sends (DSTU2-era Accept, plain JSON Content-Type).
KIT_HEADERS = {"Accept": "application/json+fhir", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Target:
    base: str  # FHIR base, no trailing slash
    cert: tuple[str, str] | None = None  # client certificate and key (PEM files)
    ca: str | None = None  # CAs of the server certificate; None = the usual bundle
    timeout: float = 30.0

    @property
    def verify(self) -> str | bool:
        return self.ca or True

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base}/{path.lstrip('/')}"


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None  # the transport error, when there was no answer
    url: str = ""  # the last URL reached (after redirects)
    hops: list[tuple[int, str]] = field(default_factory=list)  # redirects: status, Location
    document: Any = None  # the parsed JSON body, if any

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def is_outcome(self) -> bool:
        return isinstance(self.document, dict) and (
            self.document.get("resourceType") == "OperationOutcome")

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}"


def call(target: Target, method: str, path: str, *, body: Any = None,
         headers: dict[str, str | None] | None = None, with_cert: bool = True,
         follow: bool = False, max_redirects: int = 3) -> Answer:
    """One request on a fresh connection; never raises for transport errors."""
    session = requests.Session()
    session.trust_env = False  # the environment's proxies and CA bundles are not ours
    session.max_redirects = max_redirects
    data = orjson.dumps(body) if body is not None else None
    started = time.perf_counter()
    try:
        response = session.request(
            method, target.url(path), data=data, headers={**KIT_HEADERS, **(headers or {})},
            cert=target.cert if with_cert else None, verify=target.verify,
            timeout=target.timeout, allow_redirects=follow)
        content = response.content
        document = _json(content)
    except requests.TooManyRedirects as exc:
        return Answer(None, error=f"more than {max_redirects} redirects: {exc}",
                      elapsed=time.perf_counter() - started)
    except requests.RequestException as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}",
                      elapsed=time.perf_counter() - started)
    finally:
        session.close()
    return Answer(response.status_code, dict(response.headers), content,
                  time.perf_counter() - started, url=response.url,
                  hops=[(r.status_code, r.headers.get("Location", "")) for r in response.history],
                  document=document)


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True)
class Handshake:
    ok: bool
    error: str | None = None
    version: str | None = None
    not_after: datetime | None = None


def handshake(target: Target, version: ssl.TLSVersion | None = None, *,
              verify: bool = True) -> Handshake:
    """A TLS handshake with the server of `target` (pinned to `version` if given)."""
    parts = urlsplit(target.base)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=target.ca) if verify else (
        ssl._create_unverified_context())  # noqa: S323 - probing versions, not trusting
    if version is not None:
        # Let this client offer old versions at all, to see whether the server takes them.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
    if target.cert:
        context.load_cert_chain(*target.cert)
    try:
        with socket.create_connection((host, port), timeout=target.timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            peer = tls.getpeercert() if verify else None
            not_after = None
            if peer and peer.get("notAfter"):
                not_after = datetime.fromtimestamp(
                    ssl.cert_time_to_seconds(str(peer["notAfter"])), UTC)
            return Handshake(True, version=tls.version(), not_after=not_after)
    except (ssl.SSLError, OSError) as exc:
        return Handshake(False, error=f"{type(exc).__name__}: {exc}")
