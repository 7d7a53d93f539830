"""The SAS channel: mutual TLS, with gunicorn terminating TLS (deploy/gunicorn_tls.conf.py and
the workers of app/auth/gunicorn_tls.py) or behind a trusted reverse proxy that forwards the
client certificate in a header. Certificates are made here (tests/support/pki.py): a CA, SAS's
allowed certificate, one with the wrong OU, one from another CA, an expired one.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from app import create_app
from app.auth import gate
from app.auth.certificates import CertificateRefused, Verdict, checked, checked_subject
from app.auth.gunicorn_tls import with_peer_certificate
from app.auth.mtls import PEER_CERTIFICATE_KEY, from_trusted_proxy
from app.auth.principal import CLIENT, Principal
from app.auth.scopes import Scopes
from app.config import Settings
from app.storage.maintenance import truncate_all
from app.validation.profiles import default_profiles
from tests.sas_data import MARTIN, agenda, load, sas_url
from tests.support.live_server import REPO_ROOT, LiveServer
from tests.support.pki import Authority, Issued, server_certificate
from tests.support.sas_agenda import SAS_SYSTEM, regulator, regulator_url, technical

SAS_CN, SAS_OU = "sas-agregateur.sante.fr", "SAS"
PROXY_NETWORK, PROXY, STRANGER = "10.0.0.0/8", "10.1.2.3", "192.0.2.7"
CONFIG = REPO_ROOT / "deploy" / "gunicorn_tls.conf.py"
BASE_URL = "http://localhost/fhir"
SAS_JSON = "application/json+fhir"
BUNDLE_PROFILE = "http://sas.fr/fhir/StructureDefinition/BundleAgregateur"
HEADER = "X-SSL-Client-Cert"
REGULATOR = "5d0b9a5e-3c1f-4b8e-9a53-0c6f1b2d7e41"  # SAS technical ids are UUIDs
Resource = dict[str, Any]


# -- certificates -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    ca_bundle: Path
    server: tuple[Path, Path]
    clients: dict[str, Issued]  # sas, wrong-cn, wrong-ou, other-ca, expired, not-yet-valid
    files: dict[str, tuple[Path, Path]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("mtls")
    ca, other = Authority("IGC-Sante test CA"), Authority("Unknown test CA")
    now = datetime.now(UTC)
    clients = {
        "sas": ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU),
        "wrong-cn": ca.issue("editeur.example", organisation="ANS", unit=SAS_OU),
        "wrong-ou": ca.issue(SAS_CN, organisation="ANS", unit="Editeurs"),
        "other-ca": other.issue(SAS_CN, organisation="ANS", unit=SAS_OU),
        "expired": ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU,
                            valid_from=now - timedelta(days=10),
                            valid_until=now - timedelta(days=1)),
        "not-yet-valid": ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU,
                                  valid_from=now + timedelta(days=1)),
    }
    return Pki(ca_bundle=ca.write(directory / "client-ca.pem"),
               server=server_certificate(ca).write(directory / "server.pem"),
               clients=clients,
               files={name: issued.write(directory / f"{name}.pem")
                      for name, issued in clients.items()})


def production(pki: Pki, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "fhir_base_url": BASE_URL, "secret_key": "tests", "security_profile": "production",
        "client_ca_bundle": str(pki.ca_bundle), "sas_allowed_cn": (SAS_CN, "other.example"),
        "sas_allowed_ou": (SAS_OU,), "trusted_proxies": (PROXY_NETWORK,)}
    values.update(overrides)
    return Settings.from_env(**values)


# -- the checks themselves ----------------------------------------------------------------------

def test_an_allowed_certificate_gives_its_subject(pki: Pki) -> None:
    subject = checked_subject(pki.clients["sas"].cert, production(pki))
    assert subject == f"CN={SAS_CN},OU={SAS_OU},O=ANS,C=FR"


@pytest.mark.parametrize(("client", "settings", "reason"), [
    ("wrong-cn", {}, "CN of the client certificate CN=editeur.example"),
    ("wrong-ou", {}, "no OU of the client certificate"),
    ("other-ca", {}, "does not chain to a CA of CLIENT_CA_BUNDLE"),
    ("expired", {}, "expired on"),
    ("not-yet-valid", {}, "is not valid before"),
    ("sas", {"client_ca_bundle": None}, "no CLIENT_CA_BUNDLE is configured"),
    ("sas", {"client_ca_bundle": "/nonexistent/ca.pem"}, "cannot be read"),
    ("sas", {"sas_allowed_cn": ()}, "not in SAS_ALLOWED_CN"),
    ("sas", {"sas_allowed_ou": ()}, "is in SAS_ALLOWED_OU"),
])
def test_refused_certificates_say_why(pki: Pki, client: str, settings: dict[str, Any],
                                      reason: str) -> None:
    with pytest.raises(CertificateRefused, match=reason):
        checked_subject(pki.clients[client].cert, production(pki, **settings))


@pytest.mark.parametrize(("address", "trusted"), [
    ("10.1.2.3", True), ("::ffff:10.1.2.3", True), ("192.0.2.7", False), ("fd00::1", True),
    ("11.0.0.1", False), ("", False), ("unix-socket", False)])
def test_trusted_proxies_are_addresses_and_networks(address: str, trusted: bool) -> None:
    assert from_trusted_proxy(address, (PROXY_NETWORK, "fd00::/8", "not an address")) is trusted


def test_the_worker_wrapper_replaces_any_certificate_already_in_the_environ() -> None:
    seen: list[object] = []

    def app(environ: dict[str, Any], _start: Any) -> list[bytes]:
        seen.append(environ.get(PEER_CERTIFICATE_KEY))
        return []

    # Not a TLS socket (plain HTTP): no certificate, whatever was put there before.
    with_peer_certificate(app)({PEER_CERTIFICATE_KEY: b"forged", "gunicorn.socket": object()},
                               lambda *a: None)
    assert seen == [None]


# -- reverse-proxy mode (the Flask app, as the proxy's peer) ------------------------------------

def _sas_agenda(engine: Engine, database_url: str) -> None:
    """The SAS search test agenda, loaded with the checks off (then served in production)."""
    truncate_all(engine)
    loader = create_app(Settings.from_env(database_url=database_url, fhir_base_url=BASE_URL,
                                          secret_key="tests", security_profile="development"),
                        engine=engine)
    load(loader.test_client(), agenda())


@pytest.fixture
def proxied(engine: Engine, database_url: str, pki: Pki) -> Flask:
    _sas_agenda(engine, database_url)
    app = create_app(production(pki, database_url=database_url), engine=engine)
    app.config["TESTING"] = True
    return app


def _via_proxy(app: Flask, peer: str, certificate: bytes | None = None,
               **headers: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": peer})
    if certificate is not None:
        # As nginx's $ssl_client_escaped_cert: the PEM, URL-encoded.
        headers[HEADER] = quote(certificate.decode(), safe="")
    client.environ_base.update({f"HTTP_{name.upper().replace('-', '_')}": value
                                for name, value in headers.items()})
    return client


def _search(client: FlaskClient) -> tuple[int, Resource]:
    response = client.get(sas_url(MARTIN), headers={"Accept": SAS_JSON})
    return response.status_code, json.loads(response.data)


def _put_regulator(client: FlaskClient) -> int:
    response = client.put(f"/fhir/{regulator_url(SAS_SYSTEM, REGULATOR)}",
                          data=json.dumps(regulator(technical(REGULATOR))),
                          headers={"Content-Type": SAS_JSON, "Accept": SAS_JSON})
    return response.status_code


def assert_sas_bundle(status: int, bundle: Resource) -> None:
    assert status == 200, bundle
    assert bundle["meta"]["profile"] == [BUNDLE_PROFILE]
    assert bundle["total"] == 4
    assert default_profiles().errors(bundle) == []


def assert_outcome(status: int, answer: Resource, expected: int, *reason: str) -> None:
    assert status == expected, answer
    assert answer["resourceType"] == "OperationOutcome"
    diagnostics = answer["issue"][0]["diagnostics"]
    assert all(part in diagnostics for part in reason), diagnostics


def test_proxy_mode_accepts_the_sas_certificate_forwarded_by_a_trusted_proxy(
        proxied: Flask, pki: Pki) -> None:
    client = _via_proxy(proxied, PROXY, pki.clients["sas"].pem)
    assert_sas_bundle(*_search(client))
    assert _put_regulator(client) == 201


@pytest.mark.parametrize(("client", "reason"), [
    ("wrong-ou", "no OU of the client certificate"),
    ("other-ca", "does not chain to a CA of CLIENT_CA_BUNDLE"),
    ("expired", "expired on"),
])
def test_proxy_mode_refuses_other_certificates_with_403(proxied: Flask, pki: Pki, client: str,
                                                        reason: str) -> None:
    via = _via_proxy(proxied, PROXY, pki.clients[client].pem)
    assert_outcome(*_search(via), 403, "Client certificate refused", reason)
    assert _put_regulator(via) == 403


def test_a_certificate_that_is_not_sas_does_not_stop_an_oauth_client(
        proxied: Flask, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    agenda_software = Principal(CLIENT, "agenda-x", Scopes.parse("system/Slot.rs"))
    monkeypatch.setattr(gate, "token_principal",
                        lambda request, _state: agenda_software
                        if request.headers.get("Authorization") == "Bearer agenda-x" else None)
    via = _via_proxy(proxied, PROXY, pki.clients["wrong-ou"].pem, Authorization="Bearer agenda-x")
    answer = via.get("/fhir/Slot?_id=m-a-public", headers={"Accept": SAS_JSON})
    assert answer.status_code == 200 and json.loads(answer.data)["total"] == 1
    # … but the SAS interactions still need SAS's certificate.
    assert_outcome(*_search(via), 403, "reserved to the SAS platform")


def test_an_accepted_certificate_is_not_verified_again_until_its_settings_change(
        proxied: Flask, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.auth import mtls

    checks: list[str] = []

    def counting(certificate: Any, settings: Settings, now: Any = None) -> Verdict:
        checks.append(certificate.subject.rfc4514_string())
        return checked(certificate, settings, now)

    monkeypatch.setattr(mtls, "checked", counting)
    mtls._verdicts.clear()
    client = _via_proxy(proxied, PROXY, pki.clients["sas"].pem)
    for _ in range(3):
        assert _search(client)[0] == 200
    assert len(checks) == 1
    # Other allow-lists: a new verdict, here a refusal.
    narrower = create_app(production(pki, database_url=proxied.extensions["agenda"]
                                     .settings.database_url, sas_allowed_ou=("Autre",)),
                          engine=proxied.extensions["agenda"].engine)
    refused_client = _via_proxy(narrower, PROXY, pki.clients["sas"].pem)
    assert_outcome(*_search(refused_client), 403, "SAS_ALLOWED_OU")
    assert len(checks) == 2


def test_proxy_mode_refuses_an_unreadable_header(proxied: Flask) -> None:
    via = _via_proxy(proxied, PROXY, b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    assert_outcome(*_search(via), 403, "cannot be read")


@pytest.mark.parametrize("headers", [{}, {"X-Forwarded-For": PROXY}, {"X-Real-IP": PROXY}])
def test_a_forged_header_from_an_untrusted_address_is_ignored(
        proxied: Flask, pki: Pki, headers: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    via = _via_proxy(proxied, STRANGER, pki.clients["sas"].pem, **headers)
    assert_outcome(*_search(via), 401, "Authentication required")
    assert f"{HEADER} header from {STRANGER} ignored" in caplog.text
    assert _put_regulator(via) == 401


# -- gunicorn terminating TLS -------------------------------------------------------------------

def client_context(pki: Pki, identity: str | None = None, *,
                   maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_bundle))
    context.maximum_version = maximum
    if identity is not None:
        cert, key = pki.files[identity]
        context.load_cert_chain(str(cert), str(key))
    return context


def tls_live_server(database_url: str, pki: Pki, log: Path, *args: str,
                    env: dict[str, str] | None = None) -> LiveServer:
    """gunicorn with deploy/gunicorn_tls.conf.py (gthread workers unless `args` say else);
    `env` adds to or overrides its environment."""
    cert, key = pki.server
    env = {"SECURITY_PROFILE": "production", "TLS_CERT_FILE": str(cert),
           "TLS_KEY_FILE": str(key), "CLIENT_CA_BUNDLE": str(pki.ca_bundle),
           "SAS_ALLOWED_CN": SAS_CN, "SAS_ALLOWED_OU": SAS_OU, "TRUSTED_PROXIES": PROXY_NETWORK,
           "GUNICORN_THREADS": "2", "SECRET_KEY": "tests", **(env or {})}
    return LiveServer(database_url, log, workers=1, args=["-c", str(CONFIG), *args], env=env,
                      tls=client_context(pki))


@pytest.fixture(scope="module")
def tls_server(database_url: str, engine: Engine, pki: Pki,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("gunicorn-tls") / "gunicorn.log"
    with tls_live_server(database_url, pki, log) as server:
        yield server


@pytest.fixture
def tls(tls_server: LiveServer, engine: Engine, database_url: str) -> LiveServer:
    _sas_agenda(engine, database_url)
    return tls_server


def call(server: LiveServer, context: ssl.SSLContext, method: str, path: str,
         body: Resource | None = None, **headers: str) -> tuple[int, Resource]:
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context,
                                             timeout=10)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Accept": SAS_JSON, "Content-Type": SAS_JSON, **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_tls_the_sas_certificate_searches_slots_and_writes_regulators(tls: LiveServer,
                                                                     pki: Pki) -> None:
    context = client_context(pki, "sas")
    assert_sas_bundle(*call(tls, context, "GET", sas_url(MARTIN)))
    status, created = call(tls, context, "PUT", f"/fhir/{regulator_url(SAS_SYSTEM, REGULATOR)}",
                           regulator(technical(REGULATOR)))
    assert status == 201, created
    assert created["resourceType"] == "Practitioner"


def test_tls_a_certificate_with_the_wrong_ou_gets_403(tls: LiveServer, pki: Pki) -> None:
    answer = call(tls, client_context(pki, "wrong-ou"), "GET", sas_url(MARTIN))
    assert_outcome(*answer, 403, "no OU of the client certificate", "OU=Editeurs")


def test_tls_without_a_certificate_the_sas_search_gets_401_but_metadata_answers(
        tls: LiveServer, pki: Pki) -> None:
    context = client_context(pki)
    assert_outcome(*call(tls, context, "GET", sas_url(MARTIN)), 401, "Authentication required")
    status, capability = call(tls, context, "GET", "/fhir/metadata")
    assert (status, capability["resourceType"]) == (200, "CapabilityStatement")


def test_tls_a_forged_certificate_header_is_ignored(tls: LiveServer, pki: Pki) -> None:
    # 127.0.0.1 is not a trusted proxy: the header counts for nothing, X-Forwarded-For neither.
    forged = quote(pki.clients["sas"].pem.decode(), safe="")
    answer = call(tls, client_context(pki), "GET", sas_url(MARTIN),
                  **{HEADER: forged, "X-Forwarded-For": PROXY})
    assert_outcome(*answer, 401, "Authentication required")


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
# The server's alerts (ALERT_*), not a refusal by the client itself.
@pytest.mark.parametrize(("client", "alert"), [("other-ca", "ALERT_UNKNOWN_CA"),
                                               ("expired", "ALERT_CERTIFICATE_EXPIRED")])
def test_tls_the_handshake_refuses_another_ca_and_an_expired_certificate(
        tls: LiveServer, pki: Pki, client: str, alert: str, maximum: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError, match=alert):
        call(tls, client_context(pki, client, maximum=maximum), "GET", sas_url(MARTIN))


def _legacy_client(pki: Pki, version: ssl.TLSVersion) -> ssl.SSLContext:
    # SECLEVEL=0 lets this client offer TLS 1.1: the refusal must come from the server.
    context = client_context(pki, "sas", maximum=version)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_is_refused_while_the_same_client_on_1_2_is_served(tls: LiveServer,
                                                                  pki: Pki) -> None:
    status, _ = call(tls, _legacy_client(pki, ssl.TLSVersion.TLSv1_2), "GET", "/fhir/metadata")
    assert status == 200
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
        call(tls, _legacy_client(pki, ssl.TLSVersion.TLSv1_1), "GET", "/fhir/metadata")


def test_tls_the_sync_worker_hands_over_the_certificate_too(
        engine: Engine, database_url: str, pki: Pki, tmp_path: Path) -> None:
    _sas_agenda(engine, database_url)
    worker = ("-k", "app.auth.gunicorn_tls.SyncWorkerWithCertificate")
    with tls_live_server(database_url, pki, tmp_path / "gunicorn.log", *worker) as server:
        assert_sas_bundle(*call(server, client_context(pki, "sas"), "GET", sas_url(MARTIN)))
        answer = call(server, client_context(pki, "wrong-ou"), "GET", sas_url(MARTIN))
        assert_outcome(*answer, 403, "no OU of the client certificate")
