"""Downloading the CRLs of CLIENT_CRL_URLS into CLIENT_CRL_CACHE_DIR.

Who downloads:
- `fhir-agenda crl refresh`, every URL, in the foreground (run it at deployment);
- the delivery worker (`fhir-agenda worker`) and the web processes, through
  `refresh_in_background`: at most once a minute per process it looks for a URL whose last
  successful download is older than CLIENT_CRL_REFRESH_MINUTES and, if there is one, fetches
  the due ones in a daemon thread. Web processes call it when they see a client certificate;
  a request never waits for a download, it uses what is on disk (app/auth/revocation.py
  notices a replaced cache file by its stat).
Processes of one host share the cache directory: the `.fetched` marker next to each cache
file records the last successful download, so whichever process notices first downloads and
the others find the CRL fresh. During an outage each process tries once a minute.

A download replaces the cache file (temporary file, then an atomic rename) only if it is a
CRL signed by a CA of CLIENT_CA_BUNDLE and not older than the cached one: plain http is
normal for CRLs, and someone in the middle could otherwise serve an older CRL that does not
list a recent revocation yet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from cryptography import x509

from app import metrics
from app.auth.certificates import CertificateRefused, trusted_authorities
from app.auth.crl import Crl, InvalidCrl, Source, parse, read, sources, verified
from app.config import Settings

log = logging.getLogger(__name__)

MAX_CRL_BYTES = 64 * 1024 * 1024  # the largest IGC-Santé CRLs are a few MB
CHECK_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    url: str
    ok: bool
    detail: str


def refresh(settings: Settings, *, only_due: bool = False) -> list[Outcome]:
    """Download the CRLs of CLIENT_CRL_URLS (with only_due, those not fetched for
    CLIENT_CRL_REFRESH_MINUTES) into the cache directory."""
    now = datetime.now(UTC)
    wanted = [s for s in sources(settings)
              if s.url is not None and (not only_due or _due(settings, s, now))]
    if not wanted:
        return []
    authorities: tuple[x509.Certificate, ...] = ()
    try:
        authorities = trusted_authorities(settings.client_ca_bundle or "")
    except CertificateRefused as exc:
        log.error("CRLs cannot be checked: %s", exc)  # each download then fails, and says so
    with requests.Session() as http:
        return [_refresh_one(settings, source, authorities, http) for source in wanted]


def fetched_at(path: Path) -> datetime | None:
    """When the CRL of this cache file was last downloaded successfully."""
    for candidate in (_marker(path), path):
        with contextlib.suppress(OSError):
            return datetime.fromtimestamp(candidate.stat().st_mtime, UTC)
    return None


def _due(settings: Settings, source: Source, now: datetime) -> bool:
    last = fetched_at(source.path)
    return last is None or now - last >= timedelta(minutes=settings.client_crl_refresh_minutes)


def _refresh_one(settings: Settings, source: Source,
                 authorities: tuple[x509.Certificate, ...], http: requests.Session) -> Outcome:
    url = source.url or source.label
    try:
        data = _download(http, url, settings.outbound_timeout_seconds)
        crls = [verified(crl, url, authorities) for crl in parse(data)]
        newest = max(crls, key=lambda crl: crl.this_update)
        _refuse_rollback(source, newest, authorities)
        changed = _store(source.path, data)
    except (requests.RequestException, InvalidCrl, OSError) as exc:
        metrics.CRL_REFRESH_FAILURES.labels(url=url).inc()
        kept = fetched_at(source.path)
        log.error("CRL refresh FAILED for %s: %s; %s", url, exc,
                  f"the copy downloaded at {kept.isoformat()} stays in use" if kept
                  else "no copy of it is held")
        return Outcome(url, False, str(exc))
    state = "refreshed" if changed else "unchanged"
    detail = (f"{state}: CRL of {newest.issuer_name}, {len(newest.revoked)} revoked, "
              f"thisUpdate {newest.this_update.isoformat()}, "
              f"nextUpdate {newest.next_update.isoformat()}")
    log.info("CRL from %s %s", url, detail)
    if datetime.now(UTC) > newest.next_update:
        log.error("STALE CRL: %s serves a CRL of %s past its nextUpdate %s", url,
                  newest.issuer_name, newest.next_update.isoformat())
    return Outcome(url, True, detail)


def _download(http: requests.Session, url: str, timeout: float) -> bytes:
    with http.get(url, timeout=timeout, stream=True) as response:
        response.raise_for_status()
        body = bytearray()
        for chunk in response.iter_content(chunk_size=65536):
            body += chunk
            if len(body) > MAX_CRL_BYTES:
                raise InvalidCrl(f"larger than {MAX_CRL_BYTES} bytes")
    return bytes(body)


def _refuse_rollback(source: Source, newest: Crl,
                     authorities: tuple[x509.Certificate, ...]) -> None:
    try:
        cached = read(source, authorities)
    except (OSError, InvalidCrl):
        return  # nothing usable cached: anything valid is better
    for crl in cached:
        if crl.issuer == newest.issuer and crl.this_update > newest.this_update:
            raise InvalidCrl(f"older than the cached CRL (thisUpdate "
                             f"{newest.this_update.isoformat()} < "
                             f"{crl.this_update.isoformat()}): kept the cached one")


def _store(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless it already holds it; mark the download."""
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = not path.exists() or path.read_bytes() != data
    if changed:
        draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            with open(draft, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(draft, path)  # readers see the old file or the new one, never half
        finally:
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()
    # The marker, not the CRL file, records the download: rewriting an unchanged CRL would
    # make every process reload it and forget its cached verdicts.
    _marker(path).touch()
    return changed


def _marker(path: Path) -> Path:
    return path.with_name(f"{path.name}.fetched")


# -- in the background, for the worker and the web processes ------------------------------------

class _Background:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Also after a fork: the parent's thread and lock holder do not exist in the child.
        self.lock = threading.Lock()
        self.checked_at: float | None = None
        self.thread: threading.Thread | None = None


_background = _Background()
os.register_at_fork(after_in_child=_background.reset)


def refresh_in_background(settings: Settings) -> threading.Thread | None:
    """Start downloading the due CRLs in a daemon thread (returned), unless this process
    looked less than a minute ago or is downloading already. Never waits."""
    if not settings.client_crl_urls:
        return None
    moment = time.monotonic()
    with _background.lock:
        last = _background.checked_at
        if last is not None and moment - last < CHECK_EVERY_SECONDS:
            return None
        _background.checked_at = moment
        if _background.thread is not None and _background.thread.is_alive():
            return None
        now = datetime.now(UTC)
        if not any(_due(settings, s, now) for s in sources(settings) if s.url):
            return None
        thread = threading.Thread(target=_refresh_logged, args=(settings,), daemon=True,
                                  name="crl-refresh")
        _background.thread = thread
    thread.start()
    return thread


def background_thread() -> threading.Thread | None:
    """The last download started by refresh_in_background in this process (tests join it)."""
    return _background.thread


def forget_background_check() -> None:
    """Let the next refresh_in_background look again at once (tests, CLI)."""
    with _background.lock:
        _background.checked_at = None


def _refresh_logged(settings: Settings) -> None:
    try:
        refresh(settings, only_due=True)
    except Exception:  # a daemon thread: nobody else would see it
        log.exception("CRL refresh failed")
