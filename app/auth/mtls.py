"""SAS client certificates (mutual TLS): where the certificate of a request comes from.

Two deployments:
- gunicorn terminates TLS with the workers of app/auth/gunicorn_tls.py, which put the peer
  certificate (DER) in the WSGI environ under PEER_CERTIFICATE_KEY: no HTTP header can
  produce that key (headers become HTTP_* keys);
- a reverse proxy terminates TLS and forwards the certificate, PEM URL-encoded as nginx's
  $ssl_client_escaped_cert, in `settings.client_cert_header`; believed only when the direct
  peer (never X-Forwarded-For) is one of `settings.trusted_proxies`.

Either way the certificate is then checked by app/auth/certificates.py, revocation included;
seeing a certificate also lets this process refresh due CRLs in the background
(app/auth/crl_refresh.py).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from flask import Request

from app.auth import crl_refresh, revocation
from app.auth.certificates import CertificateRefused, checked, parse_der, parse_pem
from app.auth.principal import Principal, sas_principal
from app.config import Settings
from app.outcome import Forbidden

log = logging.getLogger(__name__)

PEER_CERTIFICATE_KEY = "fhir_agenda.peer_certificate"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# An accepted certificate is not checked again for a while: the chain verification costs
# ~0.4 ms per request (bench/README.md). Keyed by everything the verdict depends on, the
# CRL files included: a CRL that revokes the certificate ends its cached acceptance.
VERDICT_TTL = timedelta(minutes=5)
VERDICT_CACHE_SIZE = 64
_verdicts: OrderedDict[tuple[object, ...], tuple[str, datetime]] = OrderedDict()
_verdicts_lock = threading.Lock()


def certificate_principal(request: Request, settings: Settings) -> Principal | None:
    """The SAS principal of an allowed client certificate; None without a certificate.

    Raises Forbidden when a certificate is presented but refused."""
    try:
        presented = presented_certificate(request, settings)
        if presented is None:
            return None
        crl_refresh.refresh_in_background(settings)
        now = datetime.now(UTC)
        key = _verdict_key(presented, settings)
        with _verdicts_lock:
            cached = _verdicts.get(key) if key is not None else None
        if cached is not None and now < cached[1]:
            return sas_principal(cached[0])
        certificate = parse_der(presented) if isinstance(presented, bytes) else parse_pem(
            unquote_to_bytes(presented))
        verdict = checked(certificate, settings, now)
        if key is not None:
            _remember(key, verdict.subject, min(verdict.until, now + VERDICT_TTL))
        return sas_principal(verdict.subject)
    except CertificateRefused as exc:
        log.warning("client certificate refused from %s: %s", _peer(request), exc)
        raise Forbidden(f"Client certificate refused: {exc}") from exc


def presented_certificate(request: Request, settings: Settings) -> bytes | str | None:
    """The client certificate of the TLS connection (DER bytes), else the one a trusted
    proxy forwarded (the header: URL-encoded PEM)."""
    der = request.environ.get(PEER_CERTIFICATE_KEY)
    if der:
        return bytes(der)
    forwarded = request.headers.get(settings.client_cert_header)
    if not forwarded:
        return None
    if not from_trusted_proxy(_peer(request), settings.trusted_proxies):
        log.warning("%s header from %s ignored: not in TRUSTED_PROXIES",
                    settings.client_cert_header, _peer(request))
        return None
    return forwarded.strip()


def _verdict_key(presented: bytes | str, settings: Settings) -> tuple[object, ...] | None:
    bundle = settings.client_ca_bundle
    try:
        stamp = os.stat(bundle).st_mtime_ns if bundle else None
    except OSError:
        return None  # the check itself will say what is wrong with the bundle
    crls = revocation.stamp(settings) if settings.checks_revocation else None
    return (presented, bundle, stamp, crls, settings.client_crl_grace_hours,
            settings.sas_allowed_cn, settings.sas_allowed_ou)


def _remember(key: tuple[object, ...], subject: str, until: datetime) -> None:
    with _verdicts_lock:
        _verdicts[key] = (subject, until)
        _verdicts.move_to_end(key)
        while len(_verdicts) > VERDICT_CACHE_SIZE:
            _verdicts.popitem(last=False)


def _peer(request: Request) -> str:
    # The TCP peer, even if a ProxyFix middleware rewrote REMOTE_ADDR from X-Forwarded-For.
    original = request.environ.get("werkzeug.proxy_fix.orig") or request.environ
    return str(original.get("REMOTE_ADDR") or "")


def from_trusted_proxy(address: str, proxies: tuple[str, ...]) -> bool:
    """Whether `address` is one of the TRUSTED_PROXIES addresses or networks."""
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    # An IPv4 peer may reach a dual-stack socket as ::ffff:a.b.c.d.
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer in network for network in _networks(proxies))


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in proxies:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            log.error("TRUSTED_PROXIES: %r is neither an address nor a network; ignored", entry)
    return tuple(networks)
