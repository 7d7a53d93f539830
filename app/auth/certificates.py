"""Checking a SAS client certificate: validity dates, chain to the configured CAs,
revocation (the CRL of its issuer, app/auth/revocation.py), then the subject's CN and OU
against the allow-lists.

TLS termination already checks chain and dates; they are checked again here because the
reverse-proxy mode only hands us a header, and one code path for both modes is easier to trust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from app.auth import revocation
from app.config import Settings

# The web-PKI profile of `cryptography`, less its demand for a subjectAltName: SAS's client
# certificates name SAS in the subject (CN, OU), not in a SAN.
CLIENT_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)


class CertificateRefused(Exception):
    """A client certificate was presented but may not identify SAS; the message says why."""


@dataclass(frozen=True)
class Verdict:
    subject: str  # RFC 4514
    until: datetime  # check again after this: end of validity, or of the CRL's grace


def parse_pem(data: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateRefused("the client certificate cannot be read as PEM") from exc


def parse_der(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateRefused("the client certificate cannot be read as DER") from exc


def checked_subject(certificate: x509.Certificate, settings: Settings,
                    now: datetime | None = None) -> str:
    """The RFC 4514 subject of an acceptable SAS certificate; raises CertificateRefused."""
    return checked(certificate, settings, now).subject


def checked(certificate: x509.Certificate, settings: Settings,
            now: datetime | None = None) -> Verdict:
    """The verdict on an acceptable SAS certificate; raises CertificateRefused."""
    now = now or datetime.now(UTC)
    subject = certificate.subject.rfc4514_string()
    _check_dates(certificate, subject, now)
    anchors = _anchors(settings.client_ca_bundle)
    chain = _check_chain(certificate, subject, anchors, now)
    try:
        crl_until = revocation.check(certificate, chain[1] if len(chain) > 1 else None,
                                     settings, now, anchors)
    except revocation.RevocationRefusal as exc:
        raise CertificateRefused(f"the client certificate {subject} {exc}") from exc
    _check_names(certificate, subject, settings)
    until = certificate.not_valid_after_utc
    return Verdict(subject, min(until, crl_until) if crl_until else until)


def _check_dates(certificate: x509.Certificate, subject: str, now: datetime) -> None:
    # Checked before the chain for a precise message; the verifier checks them again.
    if now < certificate.not_valid_before_utc:
        raise CertificateRefused(f"the client certificate {subject} is not valid before "
                                 f"{certificate.not_valid_before_utc.isoformat()}")
    if now > certificate.not_valid_after_utc:
        raise CertificateRefused(f"the client certificate {subject} expired on "
                                 f"{certificate.not_valid_after_utc.isoformat()}")


def _anchors(bundle: str | None) -> tuple[x509.Certificate, ...]:
    if not bundle:
        raise CertificateRefused("no CLIENT_CA_BUNDLE is configured: no client certificate "
                                 "can be trusted")
    return trusted_authorities(bundle)


def _check_chain(certificate: x509.Certificate, subject: str,
                 anchors: tuple[x509.Certificate, ...], now: datetime
                 ) -> list[x509.Certificate]:
    """The verified chain, the certificate first, then its issuer."""
    verifier = (PolicyBuilder().store(Store(list(anchors))).time(now)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=CLIENT_POLICY)
                .build_client_verifier())
    try:
        # Every CA of the bundle is an anchor: IGC-Santé intermediates are listed there too.
        return verifier.verify(certificate, list(anchors)).chain
    except VerificationError as exc:
        raise CertificateRefused(f"the client certificate {subject} does not chain to a CA "
                                 f"of CLIENT_CA_BUNDLE ({exc})") from exc


def _check_names(certificate: x509.Certificate, subject: str, settings: Settings) -> None:
    common_names = _values(certificate, NameOID.COMMON_NAME)
    units = _values(certificate, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not set(common_names) & set(settings.sas_allowed_cn):
        raise CertificateRefused(f"the CN of the client certificate {subject} is not in "
                                 "SAS_ALLOWED_CN")
    if not set(units) & set(settings.sas_allowed_ou):
        raise CertificateRefused(f"no OU of the client certificate {subject} is in "
                                 "SAS_ALLOWED_OU")


def _values(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(oid)]


def trusted_authorities(path: str) -> tuple[x509.Certificate, ...]:
    """The CAs of a PEM bundle, read again when the file changes (CA rotation)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise CertificateRefused(f"CLIENT_CA_BUNDLE {path} cannot be read: "
                                 f"{exc.strerror}") from exc
    return _load_bundle(path, stamp)


@lru_cache(maxsize=4)
def _load_bundle(path: str, _stamp: int) -> tuple[x509.Certificate, ...]:
    with open(path, "rb") as bundle:
        try:
            authorities = tuple(x509.load_pem_x509_certificates(bundle.read()))
        except ValueError as exc:
            raise CertificateRefused(f"CLIENT_CA_BUNDLE {path} holds no readable PEM "
                                     "certificate") from exc
    return authorities
