"""CRLs of the client CAs: where they are on disk and what a CRL file may be trusted to say.

A source is a configured file (CLIENT_CRL_FILES) or the cache file of a distribution point
(CLIENT_CRL_URLS, downloaded by app/auth/crl_refresh.py into CLIENT_CRL_CACHE_DIR). A file
holds one DER CRL or one or more PEM CRLs. A CRL counts only if a CA of CLIENT_CA_BUNDLE bearing
its issuer's name signed it: anyone can serve a file over http, only the CA can sign one.

Not supported (such CRLs are refused with the reason): delta CRLs, indirect CRLs and CRLs
limited to CA certificates or to some revocation reasons, which do not list every revoked
client certificate of their issuer; a CRL partitioned by distribution point is taken as
complete.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from app.config import Settings

PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class InvalidCrl(ValueError):
    """A CRL that cannot be used; the message says why."""


@dataclass(frozen=True)
class Source:
    label: str  # the configured file or URL
    path: Path  # where it is read
    url: str | None = None


@dataclass(frozen=True)
class Crl:
    """A CRL whose signature was verified with the key of `issuer` (from CLIENT_CA_BUNDLE)."""

    source: str
    issuer: x509.Certificate
    crl: x509.CertificateRevocationList
    next_update: datetime
    # Looked up on every check of a certificate that is not in the verdict cache: a set, not
    # the CRL's own search.
    revoked: frozenset[int]

    @property
    def issuer_name(self) -> str:
        return self.issuer.subject.rfc4514_string()

    @property
    def this_update(self) -> datetime:
        return self.crl.last_update_utc


def sources(settings: Settings) -> tuple[Source, ...]:
    """The configured files, then the cache files of the URLs."""
    return _sources(settings.client_crl_files, settings.client_crl_urls,
                    settings.client_crl_cache_dir)


def cache_path(settings: Settings, url: str) -> Path:
    """The cache file of a distribution point: readable name, unique per URL."""
    return _cache_path(settings.client_crl_cache_dir, url)


@lru_cache(maxsize=8)  # asked on every request that shows a certificate
def _sources(files: tuple[str, ...], urls: tuple[str, ...], cache_dir: str
             ) -> tuple[Source, ...]:
    return (tuple(Source(name, Path(name)) for name in files)
            + tuple(Source(url, _cache_path(cache_dir, url), url) for url in urls))


def _cache_path(cache_dir: str, url: str) -> Path:
    base = Path(urlsplit(url).path).name or "crl"
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:48]
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{readable}-{digest}.crl"


def parse(data: bytes) -> list[x509.CertificateRevocationList]:
    """The CRLs of a file: PEM (one or more) or DER (one)."""
    try:
        if b"-----BEGIN" in data:
            blocks = PEM_CRL.findall(data)
            if not blocks:
                raise InvalidCrl("no PEM block 'X509 CRL' in it")
            return [x509.load_pem_x509_crl(block) for block in blocks]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        if isinstance(exc, InvalidCrl):
            raise
        raise InvalidCrl(f"not a readable CRL ({exc})") from exc


def verified(crl: x509.CertificateRevocationList, source: str,
             authorities: Sequence[x509.Certificate]) -> Crl:
    """The CRL, once its issuer is found in `authorities` and its signature checks."""
    issuer_name = crl.issuer.rfc4514_string()
    named = [ca for ca in authorities if ca.subject == crl.issuer]
    if not named:
        raise InvalidCrl(f"issued by {issuer_name}, which is not a CA of CLIENT_CA_BUNDLE")
    signer = next((ca for ca in named if _may_sign_crls(ca) and _signed(crl, ca)), None)
    if signer is None:
        raise InvalidCrl(f"bad signature: not signed by the key of {issuer_name} in "
                         "CLIENT_CA_BUNDLE")
    _check_scope(crl)
    next_update = crl.next_update_utc
    if next_update is None:
        raise InvalidCrl("no nextUpdate: nobody can tell when it goes out of date")
    return Crl(source, signer, crl, next_update,
               frozenset(entry.serial_number for entry in crl))


def read(source: Source, authorities: Sequence[x509.Certificate]) -> list[Crl]:
    """The verified CRLs of a source; OSError when it cannot be read, InvalidCrl else."""
    return [verified(crl, source.label, authorities) for crl in parse(source.path.read_bytes())]


def fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


def _signed(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a key type that cannot sign CRLs
        return False


def _may_sign_crls(ca: x509.Certificate) -> bool:
    try:
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.crl_sign


def _check_scope(crl: x509.CertificateRevocationList) -> None:
    extensions = crl.extensions
    try:
        extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        raise InvalidCrl("a delta CRL: only complete CRLs are supported")
    except x509.ExtensionNotFound:
        pass
    try:
        point = extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return
    if (point.indirect_crl or point.only_contains_ca_certs
            or point.only_contains_attribute_certs or point.only_some_reasons):
        raise InvalidCrl("a partial CRL (indirect, or limited to CA or attribute "
                         "certificates or to some reasons): it does not list every revoked "
                         "client certificate")
