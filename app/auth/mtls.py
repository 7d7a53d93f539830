"""SAS client certificates (mutual TLS): where the certificate of a request comes from.

Two deployments:
- gunicorn terminates TLS with the workers of app/auth/gunicorn_tls.py, which put the peer
  certificate (DER) in the WSGI environ under PEER_CERTIFICATE_KEY: no HTTP header can
  produce that key (headers become HTTP_* keys);
- a reverse proxy terminates TLS and forwards the certificate, PEM URL-encoded as nginx's
  $ssl_client_escaped_cert, in `settings.client_cert_header`; believed only when the direct
  peer (never X-Forwarded-For) is one of `settings.trusted_proxies`.

Either way the certificate is then checked by app/auth/certificates.py.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from cryptography import x509
from flask import Request

from app.auth.certificates import CertificateRefused, checked_subject, parse_der, parse_pem
from app.auth.principal import Principal, sas_principal
from app.config import Settings
from app.fhir.errors import Forbidden

log = logging.getLogger(__name__)

PEER_CERTIFICATE_KEY = "fhir_agenda.peer_certificate"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def certificate_principal(request: Request, settings: Settings) -> Principal | None:
    """The SAS principal of an allowed client certificate; None without a certificate.

    Raises Forbidden when a certificate is presented but refused."""
    try:
        certificate = presented_certificate(request, settings)
        if certificate is None:
            return None
        return sas_principal(checked_subject(certificate, settings))
    except CertificateRefused as exc:
        log.warning("client certificate refused from %s: %s", _peer(request), exc)
        raise Forbidden(f"Client certificate refused: {exc}") from exc


def presented_certificate(request: Request, settings: Settings) -> x509.Certificate | None:
    """The client certificate of the TLS connection, else the one a trusted proxy forwarded.

    Raises CertificateRefused when it cannot be read."""
    der = request.environ.get(PEER_CERTIFICATE_KEY)
    if der:
        return parse_der(der)
    forwarded = request.headers.get(settings.client_cert_header)
    if not forwarded:
        return None
    if not from_trusted_proxy(_peer(request), settings.trusted_proxies):
        log.warning("%s header from %s ignored: not in TRUSTED_PROXIES",
                    settings.client_cert_header, _peer(request))
        return None
    return parse_pem(unquote_to_bytes(forwarded.strip()))


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
