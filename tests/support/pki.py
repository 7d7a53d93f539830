"""Throwaway PKIs for the TLS tests, made with `cryptography` (EC P-256: fast to make).

`Authority(name)` is a CA; `authority.issue(...)` a server or client certificate, with an
optional OU and validity window; `.write(path)` stores it as PEM (key next to it, `.key`).
`authority.crl(revoked…)` is a CRL of that CA (dates and signing key chosen by the test, for
stale and forged CRLs); `write_crl(crl, path)` stores it as PEM or DER.

`make_pki(directory)` is the SAS-receiver PKI of the notification tests: a test CA, a server
certificate for 127.0.0.1/localhost, our client certificate signed by that CA, and, from a
second CA nobody trusts, an intruder's client certificate and a rogue server certificate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANISATION = "fhir-agenda tests"


def name(common_name: str, organisation: str = ORGANISATION, unit: str | None = None
         ) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=not cert_sign, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> tuple[Path, Path]:
        """Write `path` (certificate) and `path.key` (private key, 0600)."""
        path.write_bytes(self.pem)
        key_path = path.with_suffix(".key")
        key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        key_path.chmod(0o600)
        return path, key_path


class Authority:
    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = name(common_name)
        now = datetime.now(UTC)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def issue(self, common_name: str, *, server: bool = False,
              organisation: str = ORGANISATION, unit: str | None = None,
              valid_from: datetime | None = None, valid_until: datetime | None = None
              ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder().subject_name(name(common_name, organisation, unit))
            .issuer_name(self.name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or now - timedelta(hours=1))
            .not_valid_after(valid_until or now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def crl(self, *revoked: Issued, this_update: datetime | None = None,
            next_update: datetime | None = None,
            signing_key: ec.EllipticCurvePrivateKey | None = None
            ) -> x509.CertificateRevocationList:
        """A CRL of this CA listing `revoked`; by default current for a day and signed by the
        CA (another `signing_key` forges a badly signed one)."""
        now = datetime.now(UTC)
        this_update = this_update or now - timedelta(minutes=5)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
                   .last_update(this_update)
                   .next_update(next_update or this_update + timedelta(days=1)))
        for issued in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(issued.cert.serial_number)
                .revocation_date(this_update - timedelta(minutes=1)).build())
        return builder.sign(signing_key or self.key, hashes.SHA256())


def write_crl(crl: x509.CertificateRevocationList, path: Path, *, der: bool = False) -> Path:
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER if der
                                      else serialization.Encoding.PEM))
    return path


def server_certificate(authority: Authority, common_name: str = "agenda.test",
                       organisation: str = ORGANISATION) -> Issued:
    """A server certificate for 127.0.0.1 and localhost."""
    return authority.issue(common_name, server=True, organisation=organisation)


# -- the PKI of the SAS receiver ----------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    directory: Path
    ca_cert: Path  # the CA that signs the receiver's certificate and our client certificate
    server_cert: Path
    server_key: Path
    client_cert: Path  # ours: what the agenda presents to SAS
    client_key: Path
    client_subject: str  # RFC 4514 subject of our client certificate
    other_ca_cert: Path  # a CA nobody here trusts
    intruder_cert: Path  # a client certificate from the other CA
    intruder_key: Path
    intruder_subject: str
    rogue_server_cert: Path  # a server certificate for 127.0.0.1 from the other CA
    rogue_server_key: Path


def make_pki(directory: Path) -> Pki:
    """Generate the SAS receiver's PKI as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = Authority("fhir-agenda test CA"), Authority("Unknown test CA")
    client = ca.issue("fhir-agenda agenda client")
    intruder = other.issue("intruder", organisation="Nobody")
    server_cert, server_key = server_certificate(ca, "sas.test", "SAS test").write(
        directory / "server.pem")
    client_cert, client_key = client.write(directory / "client.pem")
    intruder_cert, intruder_key = intruder.write(directory / "intruder.pem")
    rogue_cert, rogue_key = server_certificate(other, "sas.test", "Rogue").write(
        directory / "rogue-server.pem")
    return Pki(
        directory=directory, ca_cert=ca.write(directory / "ca.pem"),
        server_cert=server_cert, server_key=server_key,
        client_cert=client_cert, client_key=client_key, client_subject=client.subject,
        other_ca_cert=other.write(directory / "other-ca.pem"),
        intruder_cert=intruder_cert, intruder_key=intruder_key,
        intruder_subject=intruder.subject,
        rogue_server_cert=rogue_cert, rogue_server_key=rogue_key)
