"""Is a client certificate revoked? The CRLs of its issuer, held in memory by each process.

Revocation is checked when CLIENT_CRL_FILES or CLIENT_CRL_URLS is set (app/auth/crl.py reads
them); then a certificate that passed the chain check is accepted only if:
- a CRL signed by its issuer (the CA of CLIENT_CA_BUNDLE that signed the certificate) is held;
  of several, the one with the latest thisUpdate counts (a newer CRL replaces an older one);
- that CRL does not list its serial number;
- that CRL is not out of date: up to its nextUpdate it is current; past it, it is *stale* and
  still used for CLIENT_CRL_GRACE_HOURS, each use logged as an error (at most every
  STALE_LOG_SECONDS per issuer) and shown by the `fhir_agenda_crl_stale` metric; past the
  grace the certificates of that issuer are refused.

This is fail-closed, on purpose: a revoked SAS certificate is a stolen or compromised key
that can read and write regulator accounts, so "we could not tell" refuses rather than
accepts; the grace (default 24 h, on top of the CA's own nextUpdate margin) keeps a short
outage of the distribution point from stopping SAS, and the error log and metric give time
to act before it does. An issuer with no CRL at all (a URL never downloaded, a file missing
or badly signed) is refused for the same reason. Without any CRL setting nothing is checked.

CA certificates are not checked against their root's CRL: every CA of CLIENT_CA_BUNDLE is a
trust anchor, so a revoked CA is removed from the bundle.

Cost per request: one stat() per source (the verdict cache key of app/auth/mtls.py includes
`stamp()`, so a new CRL ends every cached verdict); the files are parsed again only when a
stat changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from app import metrics
from app.auth.crl import Crl, InvalidCrl, Source, fingerprint, read, sources
from app.config import Settings

log = logging.getLogger(__name__)

STALE_LOG_SECONDS = 300
Stamp = tuple[tuple[str, int, int, int] | tuple[str, None, None, None], ...]


class RevocationRefusal(Exception):
    """The certificate is revoked, or its revocation cannot be checked; the message says why,
    as the predicate of "the client certificate X …"."""


@dataclass(frozen=True)
class SourceState:
    source: Source
    crls: tuple[Crl, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class Revocations:
    """What the CRL sources said when their files had `stamp`."""

    stamp: Stamp
    authorities: tuple[x509.Certificate, ...]
    sources: tuple[SourceState, ...]
    by_issuer: dict[bytes, Crl] = field(default_factory=dict)

    def crl_of(self, issuer: x509.Certificate) -> Crl | None:
        return self.by_issuer.get(fingerprint(issuer))

    def in_use(self, crl: Crl) -> bool:
        """False for a CRL replaced by a newer one of the same issuer."""
        return self.crl_of(crl.issuer) is crl


def stamp(settings: Settings) -> Stamp:
    """Changes whenever a CRL file is replaced or edited (inode, mtime, size)."""
    return tuple(_stat(source.path) for source in sources(settings))


def _stat(path: Path) -> tuple[str, int, int, int] | tuple[str, None, None, None]:
    try:
        status = os.stat(path)
    except OSError:
        return (str(path), None, None, None)
    return (str(path), status.st_ino, status.st_mtime_ns, status.st_size)


# The latest load per set of sources: one in production, a few in tests.
_loaded: OrderedDict[tuple[Path, ...], Revocations] = OrderedDict()
_loaded_lock = threading.Lock()
_stale_logged: dict[bytes, float] = {}


def current(settings: Settings, authorities: tuple[x509.Certificate, ...]) -> Revocations:
    """The CRLs as the files are now; read again only when a file or the CAs changed."""
    key = stamp(settings)
    paths = tuple(source.path for source in sources(settings))
    with _loaded_lock:
        held = _loaded.get(paths)
        if held is not None and held.stamp == key and (held.authorities is authorities
                                                       or held.authorities == authorities):
            return held
        revocations = _load(key, settings, authorities)
        _loaded[paths] = revocations
        _loaded.move_to_end(paths)
        while len(_loaded) > 4:
            _loaded.popitem(last=False)
        return revocations


def check(certificate: x509.Certificate, issuer: x509.Certificate | None, settings: Settings,
          now: datetime, authorities: tuple[x509.Certificate, ...]) -> datetime | None:
    """None when revocation is not checked, else until when this acceptance holds (the end
    of the grace of the CRL used). Raises RevocationRefusal."""
    if not settings.checks_revocation:
        return None
    if issuer is None:
        raise RevocationRefusal("cannot be checked for revocation: its issuer is not known")
    crl = current(settings, authorities).crl_of(issuer)
    issuer_name = issuer.subject.rfc4514_string()
    if crl is None:
        raise RevocationRefusal(f"cannot be checked for revocation: no CRL of its issuer "
                                f"{issuer_name} is held (CLIENT_CRL_FILES / CLIENT_CRL_URLS)")
    deadline = crl.next_update + timedelta(hours=settings.client_crl_grace_hours)
    if now > deadline:
        raise RevocationRefusal(f"cannot be checked for revocation: the CRL of its issuer "
                                f"{issuer_name} is out of date since "
                                f"{crl.next_update.isoformat()} (CLIENT_CRL_GRACE_HOURS="
                                f"{settings.client_crl_grace_hours:g})")
    if now > crl.next_update:
        _log_stale(crl, deadline)
    if certificate.serial_number in crl.revoked:
        metrics.REVOKED_CERTIFICATES_REFUSED.inc()
        entry = crl.crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        when = entry.revocation_date_utc.isoformat() if entry is not None else "?"
        raise RevocationRefusal(f"was revoked on {when} (serial {certificate.serial_number:x}, "
                                f"CRL of {issuer_name} from {crl.source})")
    return deadline


def _load(key: Stamp, settings: Settings,
          authorities: tuple[x509.Certificate, ...]) -> Revocations:
    states = [_read(source, authorities) for source in sources(settings)]
    newest: dict[bytes, Crl] = {}
    for state in states:
        for crl in state.crls:
            issuer = fingerprint(crl.issuer)
            if issuer not in newest or crl.this_update > newest[issuer].this_update:
                newest[issuer] = crl
    for crl in newest.values():
        log.info("Client certificates of %s checked against the CRL from %s (%d revoked, "
                 "thisUpdate %s, nextUpdate %s)", crl.issuer_name, crl.source,
                 len(crl.revoked), crl.this_update.isoformat(), crl.next_update.isoformat())
    return Revocations(key, authorities, tuple(states), newest)


def _read(source: Source, authorities: Sequence[x509.Certificate]) -> SourceState:
    try:
        return SourceState(source, tuple(read(source, authorities)))
    except FileNotFoundError:
        problem = ("not downloaded yet (run `fhir-agenda crl refresh`)" if source.url
                   else "file not found")
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror}"
    except InvalidCrl as exc:
        problem = str(exc)
    log.error("CRL from %s ignored: %s", source.label, problem)
    return SourceState(source, problem=problem)


def _log_stale(crl: Crl, deadline: datetime) -> None:
    issuer = fingerprint(crl.issuer)
    moment = time.monotonic()
    last = _stale_logged.get(issuer)
    if last is not None and moment - last < STALE_LOG_SECONDS:
        return
    _stale_logged[issuer] = moment
    log.error("STALE CRL: the CRL of %s from %s is past its nextUpdate %s and could not be "
              "refreshed; certificates of this issuer will be refused after %s",
              crl.issuer_name, crl.source, crl.next_update.isoformat(), deadline.isoformat())
