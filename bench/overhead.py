"""Fixed per-request costs of the SAS search path, measured in-process and interleaved.

    python -m bench.overhead --database-url URL [--requests 300] [--rounds 2]

Over HTTP a 0.1 ms difference drowns in the noise of a shared 2-core machine. Here every
variant is a Flask application on the same engine, called through Flask's test client (no
socket, no gunicorn), and the variants take turns request by request over the same seeded
SAS requests, so that the neighbours' load falls on all of them alike. Variants:

- `as is`: the application as configured for `bench.run` (development profile, default
  rate limiter, the SAS read in autocommit);
- `BEGIN…COMMIT read`: the SAS read in a transaction, as before (AppState.reading's
  autocommit option ignored on that application's state);
- `no rate limiter`: RATE_LIMIT_PER_MINUTE=0 (the throttling hook still checks for NULs);
- `production gate (mTLS)`: SECURITY_PROFILE=production with a SAS client certificate in
  the WSGI environ as gunicorn's TLS workers put it (chain, dates, CN/OU checked per request).

Reported per variant: p50/p95/mean, and the median of the per-request differences with
`as is` (the pairs ran back to back). `--wsgi` calls each application as gunicorn does
(`app(environ, start_response)`, the environ built off the clock) instead of through the
test client, whose own request building and response wrapping cost ~0.3 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from app import create_app
from app.auth.mtls import PEER_CERTIFICATE_KEY
from app.config import Settings
from app.db import make_engine
from app.state import AppState, state_of
from bench.generate import conninfo
from bench.run import _dataset, percentile
from bench.sas import ACCEPT, SasRequest, practitioner_identifiers, request_set
from tests.support.pki import Authority

SAS_CN, SAS_OU = "sas.bench", "SAS"


@dataclass
class Variant:
    name: str
    client: FlaskClient
    environ: dict[str, Any] = field(default_factory=dict)
    times_ms: dict[int, list[float]] = field(default_factory=dict)
    wsgi: bool = False

    def get(self, request: SasRequest) -> float:
        if self.wsgi:
            return self._call(request)
        started = time.perf_counter()
        response = self.client.get(request.path, headers={"Accept": ACCEPT},
                                   environ_overrides=self.environ)
        response.get_data()
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{self.name}: {response.status_code} {response.get_data()!r}")
        return seconds * 1000

    def _call(self, request: SasRequest) -> float:
        path, _, query = request.path.partition("?")
        environ = EnvironBuilder(path=path, query_string=query, headers={"Accept": ACCEPT},
                                 environ_overrides=self.environ).get_environ()
        statuses: list[str] = []
        started = time.perf_counter()
        chunks = self.client.application(environ, lambda status, _headers: statuses.append(
            status))
        body = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        seconds = time.perf_counter() - started
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{self.name}: {statuses[0]} {body!r}")
        return seconds * 1000


def _transactional(app: Flask) -> Flask:
    """The SAS read in BEGIN…COMMIT: this app's state ignores `reading(autocommit=True)`."""
    state = state_of(app)
    plain: Callable[..., Any] = AppState.reading.__get__(state)
    state.reading = lambda autocommit=False: plain(False)  # type: ignore[method-assign]
    return app


@contextmanager
def variants(url: str, base_url: str) -> Iterator[list[Variant]]:
    engine = make_engine(url)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as directory:
        authority = Authority("bench SAS client CA")
        certificate = authority.issue(SAS_CN, unit=SAS_OU)
        ca = authority.write(Path(directory) / "ca.pem")

        def app(**overrides: Any) -> Flask:
            settings = Settings.from_env(**{"database_url": url, "fhir_base_url": base_url,
                                            "security_profile": "development", **overrides})
            return create_app(settings, engine=engine)

        production = app(security_profile="production", client_ca_bundle=str(ca),
                         sas_allowed_cn=(SAS_CN,), sas_allowed_ou=(SAS_OU,))
        try:
            yield [
                Variant("as is", app().test_client()),
                Variant("BEGIN…COMMIT read", _transactional(app()).test_client()),
                Variant("no rate limiter", app(rate_limit_per_minute=0).test_client()),
                Variant("production gate (mTLS)", production.test_client(),
                        {PEER_CERTIFICATE_KEY: certificate.cert.public_bytes(
                            Encoding.DER)}),
            ]
        finally:
            engine.dispose()


def measure(found: list[Variant], sets: dict[int, list[SasRequest]], rounds: int) -> None:
    for k, requests in sets.items():
        for variant in found:  # warm-up: caches, psycopg's prepared statement
            for request in requests[:50]:
                variant.get(request)
            variant.times_ms[k] = []
        for turn in range(rounds):
            for index, request in enumerate(requests):
                shift = (index + turn) % len(found)  # each variant goes first in turn
                for variant in found[shift:] + found[:shift]:
                    variant.times_ms[k].append(variant.get(request))


def report(found: list[Variant]) -> str:
    lines = ["| practitioners | variant | n | p50 ms | p95 ms | mean ms "
             "| median paired Δ vs as is, ms |", "|---:|---|---:|---:|---:|---:|---:|"]
    reference = found[0]
    for k in reference.times_ms:
        for variant in found:
            times = variant.times_ms[k]
            delta = statistics.median(
                a - b for a, b in zip(times, reference.times_ms[k], strict=True))
            lines.append(f"| {k} | {variant.name} | {len(times)} | {percentile(times, 50):.3f} "
                         f"| {percentile(times, 95):.3f} | {statistics.fmean(times):.3f} "
                         f"| {delta:+.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wsgi", action="store_true",
                        help="call the WSGI application directly, not through the test client")
    args = parser.parse_args(argv)
    url = conninfo(args.database_url)
    info = _dataset(url)
    with psycopg.connect(url) as conn:
        identifiers = practitioner_identifiers(conn)
    start, days = date.fromisoformat(info["start"]), info["weeks"] * 7
    sets = {k: request_set(identifiers, k, args.requests, start, days, args.seed)
            for k in (1, 25)}
    with variants(args.database_url, info["base_url"]) as found:
        for variant in found:
            variant.wsgi = args.wsgi
        measure(found, sets, args.rounds)
    print(report(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
