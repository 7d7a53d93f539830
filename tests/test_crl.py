"""Revocation of SAS client certificates: CRLs of the client CAs (app/auth/revocation.py, crl.py,
crl_refresh.py, crl_commands.py) and the metrics that watch them (app/metrics.py).

A test CA issues SAS's certificate and a revoked twin (same CN and OU); its CRLs are written as
files or served by a distribution point on 127.0.0.1 started here. The TLS and proxy helpers
are those of tests/test_mtls.py.
"""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from sqlalchemy import Engine

from app import create_app
from app.auth import crl_refresh, mtls, revocation
from app.auth.certificates import CertificateRefused, Verdict, checked, checked_subject
from app.auth.crl import cache_path
from app.config import INSTANCE_DIR, Settings
from app.state import state_of
from app.subscriptions.worker import Periodic, Worker, housekeeping
from tests.sas_data import MARTIN, sas_url
from tests.support.live_server import LiveServer
from tests.support.pki import Authority, Issued, server_certificate, write_crl
from tests.test_mtls import (
    PROXY,
    SAS_CN,
    SAS_OU,
    Pki,
    _put_regulator,
    _sas_agenda,
    _search,
    _via_proxy,
    assert_outcome,
    assert_sas_bundle,
    call,
    client_context,
    production,
    tls_live_server,
)

CA_NAME = "CN=IGC-Sante test CA,O=fhir-agenda tests,C=FR"
ADMIN_TOKEN = "metrics-admin-token"


@dataclass(frozen=True)
class Crls:
    pki: Pki
    ca: Authority
    directory: Path
    revoking_crl: x509.CertificateRevocationList  # lists the "revoked" certificate
    revoking: Path  # it, as PEM
    revoking_der: Path  # the same in DER
    forged: Path  # CA's name, another key, lists SAS's good certificate


@pytest.fixture(scope="module")
def crls(tmp_path_factory: pytest.TempPathFactory) -> Crls:
    directory = tmp_path_factory.mktemp("crl")
    ca = Authority("IGC-Sante test CA")
    clients = {"sas": ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU),
               "revoked": ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU)}
    pki = Pki(ca_bundle=ca.write(directory / "client-ca.pem"),
              server=server_certificate(ca).write(directory / "server.pem"), clients=clients,
              files={name: issued.write(directory / f"{name}.pem")
                     for name, issued in clients.items()})
    revoking = ca.crl(clients["revoked"])
    forged = ca.crl(clients["sas"], signing_key=Authority("Forger").key)
    return Crls(pki, ca, directory, revoking, write_crl(revoking, directory / "ac.pem"),
                write_crl(revoking, directory / "ac.der", der=True),
                write_crl(forged, directory / "forged.pem"))


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    # What a new process would start with: no CRL loaded, no verdict, no refresh looked at.
    def forget() -> None:
        revocation._loaded.clear()
        revocation._stale_logged.clear()
        mtls._verdicts.clear()
        crl_refresh.forget_background_check()
    forget()
    yield
    thread = crl_refresh.background_thread()
    if thread is not None:
        thread.join(timeout=30)
    forget()


def with_crls(crls: Crls, *files: Path, **overrides: Any) -> Settings:
    return production(crls.pki, client_crl_files=tuple(str(f) for f in files), **overrides)


def client(crls: Crls, name: str) -> Issued:
    return crls.pki.clients[name]


# -- the check ----------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["revoking", "revoking_der"])
def test_a_revoked_certificate_is_refused_and_its_twin_of_the_same_ca_accepted(
        crls: Crls, encoding: str) -> None:
    settings = with_crls(crls, getattr(crls, encoding))
    assert checked_subject(client(crls, "sas").cert, settings) == \
        f"CN={SAS_CN},OU={SAS_OU},O=ANS,C=FR"
    revoked = client(crls, "revoked").cert
    with pytest.raises(CertificateRefused) as refusal:
        checked_subject(revoked, settings)
    assert "was revoked on" in str(refusal.value)
    assert f"serial {revoked.serial_number:x}" in str(refusal.value)
    assert f"CRL of {CA_NAME} from {getattr(crls, encoding)}" in str(refusal.value)


def test_without_crl_settings_revocation_is_not_checked(crls: Crls) -> None:
    assert checked_subject(client(crls, "revoked").cert, production(crls.pki)).startswith(
        f"CN={SAS_CN}")


def test_a_badly_signed_crl_is_ignored_with_a_log(crls: Crls,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # It lists SAS's good certificate: were it believed, SAS would be refused.
    settings = with_crls(crls, crls.forged, crls.revoking)
    with caplog.at_level(logging.INFO, logger="app.auth.revocation"):
        assert checked_subject(client(crls, "sas").cert, settings).startswith(f"CN={SAS_CN}")
    assert (f"CRL from {crls.forged} ignored: bad signature: not signed by the key of "
            f"{CA_NAME}") in caplog.text
    with pytest.raises(CertificateRefused, match="was revoked on"):
        checked_subject(client(crls, "revoked").cert, settings)


@pytest.mark.parametrize(("files", "logged"), [
    (["forged.pem"], "bad signature"),
    (["missing.pem"], "file not found"),
    (["other-ca.pem"], "issued by CN=Unknown CA,O=fhir-agenda tests,C=FR, which is not a CA "
                       "of CLIENT_CA_BUNDLE"),
])
def test_an_issuer_without_a_usable_crl_has_its_certificates_refused(
        crls: Crls, files: list[str], logged: str, caplog: pytest.LogCaptureFixture) -> None:
    write_crl(Authority("Unknown CA").crl(), crls.directory / "other-ca.pem")
    settings = with_crls(crls, *(crls.directory / name for name in files))
    with pytest.raises(CertificateRefused) as refusal:
        checked_subject(client(crls, "sas").cert, settings)
    assert f"no CRL of its issuer {CA_NAME} is held" in str(refusal.value)
    assert logged in caplog.text


def test_a_stale_crl_is_used_with_an_error_until_the_grace_ends_then_refuses(
        crls: Crls, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    stale = write_crl(crls.ca.crl(client(crls, "revoked"), this_update=now - timedelta(days=2),
                                  next_update=now - timedelta(hours=1)), tmp_path / "stale.pem")
    in_grace = with_crls(crls, stale, client_crl_grace_hours=24)
    assert checked_subject(client(crls, "sas").cert, in_grace).startswith(f"CN={SAS_CN}")
    assert f"STALE CRL: the CRL of {CA_NAME} from {stale} is past its nextUpdate" in caplog.text
    with pytest.raises(CertificateRefused, match="was revoked on"):
        checked_subject(client(crls, "revoked").cert, in_grace)

    past_grace = with_crls(crls, stale, client_crl_grace_hours=0.5)
    with pytest.raises(CertificateRefused) as refusal:
        checked_subject(client(crls, "sas").cert, past_grace)
    assert (f"the CRL of its issuer {CA_NAME} is out of date since "
            f"{(now - timedelta(hours=1)).replace(microsecond=0).isoformat()}") in str(
        refusal.value)
    assert "CLIENT_CRL_GRACE_HOURS=0.5" in str(refusal.value)


def test_an_acceptance_lasts_no_longer_than_the_grace_of_its_crl(crls: Crls,
                                                                tmp_path: Path) -> None:
    next_update = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    soon = write_crl(crls.ca.crl(next_update=next_update), tmp_path / "soon.pem")
    verdict = checked(client(crls, "sas").cert, with_crls(crls, soon, client_crl_grace_hours=2))
    assert verdict == Verdict(f"CN={SAS_CN},OU={SAS_OU},O=ANS,C=FR",
                              next_update + timedelta(hours=2))


# -- reverse-proxy mode -------------------------------------------------------------------------

def proxied_app(engine: Engine, database_url: str, settings: Settings) -> Flask:
    _sas_agenda(engine, database_url)
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    return app


def test_proxy_mode_refuses_a_revoked_certificate_with_403(
        crls: Crls, engine: Engine, database_url: str) -> None:
    app = proxied_app(engine, database_url,
                      with_crls(crls, crls.revoking, database_url=database_url))
    assert_sas_bundle(*_search(_via_proxy(app, PROXY, client(crls, "sas").pem)))
    revoked = _via_proxy(app, PROXY, client(crls, "revoked").pem)
    assert_outcome(*_search(revoked), 403, "Client certificate refused", "was revoked on",
                   f"CN={SAS_CN}")
    assert _put_regulator(revoked) == 403


def test_the_verdict_cache_does_not_outlive_a_revocation(
        crls: Crls, engine: Engine, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    crl_file = write_crl(crls.ca.crl(), tmp_path / "ac.pem")  # nobody revoked yet
    app = proxied_app(engine, database_url, with_crls(crls, crl_file, database_url=database_url))
    checks: list[str] = []

    def counting(certificate: Any, settings: Settings, now: Any = None) -> Verdict:
        checks.append(certificate.subject.rfc4514_string())
        return checked(certificate, settings, now)

    monkeypatch.setattr(mtls, "checked", counting)
    soon_revoked = _via_proxy(app, PROXY, client(crls, "revoked").pem)
    for _ in range(2):
        assert_sas_bundle(*_search(soon_revoked))
    assert len(checks) == 1  # the second answer came from the verdict cache

    write_crl(crls.ca.crl(client(crls, "revoked")), crl_file)
    assert_outcome(*_search(soon_revoked), 403, "was revoked on")
    assert len(checks) == 2


# -- gunicorn terminating TLS -------------------------------------------------------------------

def get_text(server: LiveServer, context: ssl.SSLContext, path: str,
             **headers: str) -> tuple[int, str]:
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10,
                                             context=context)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_tls_a_revoked_certificate_gets_403_and_the_metrics_count_it(
        crls: Crls, engine: Engine, database_url: str, tmp_path: Path) -> None:
    _sas_agenda(engine, database_url)
    multiprocess = tmp_path / "prometheus"
    multiprocess.mkdir()
    env = {"CLIENT_CRL_FILES": str(crls.revoking), "ADMIN_TOKEN": ADMIN_TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(multiprocess)}
    with tls_live_server(database_url, crls.pki, tmp_path / "gunicorn.log", env=env) as server:
        assert_sas_bundle(*call(server, client_context(crls.pki, "sas"), "GET",
                                sas_url(MARTIN)))
        answer = call(server, client_context(crls.pki, "revoked"), "GET", sas_url(MARTIN))
        assert_outcome(*answer, 403, "Client certificate refused", "was revoked on")

        anonymous = client_context(crls.pki)
        status, refused = get_text(server, anonymous, "/metrics")
        assert status == 401 and "admin bearer token" in refused
        status, text = get_text(server, anonymous, "/metrics",
                                Authorization=f"Bearer {ADMIN_TOKEN}")
    assert status == 200
    assert "fhir_agenda_revoked_client_certificates_refused_total 1.0" in text
    series = f'{{issuer="{CA_NAME}",source="{crls.revoking}"}}'
    assert f'fhir_agenda_crl_loaded{{source="{crls.revoking}"}} 1.0' in text
    assert f"fhir_agenda_crl_stale{series} 0.0" in text
    assert f"fhir_agenda_crl_revoked_serials{series} 1.0" in text
    assert 0 < gauge(text, "fhir_agenda_crl_next_update_seconds", series) <= 86400


def gauge(text: str, name: str, series: str) -> float:
    match = re.search(rf"^{re.escape(name + series)} (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


# -- distribution points ------------------------------------------------------------------------

class DistributionPoint:
    """A plain-http CRL distribution point on 127.0.0.1; `served` is what it answers."""

    def __init__(self, served: bytes) -> None:
        self.served = served
        point = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(point.served)))
                self.end_headers()
                self.wfile.write(point.served)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crl/AC-TEST.crl"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def point(crls: Crls) -> Iterator[DistributionPoint]:
    served = DistributionPoint(crls.revoking_der.read_bytes())
    yield served
    served.stop()


def from_url(crls: Crls, point: DistributionPoint, cache: Path, **overrides: Any) -> Settings:
    return production(crls.pki, client_crl_urls=(point.url,), client_crl_cache_dir=str(cache),
                      **overrides)


def test_a_downloaded_crl_is_cached_and_used_after_a_restart_without_the_url(
        crls: Crls, point: DistributionPoint, engine: Engine, database_url: str,
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    settings = from_url(crls, point, cache, database_url=database_url)
    runner = create_app(settings, engine=engine).test_cli_runner()
    first = runner.invoke(args=["crl", "refresh"])
    assert first.exit_code == 0, first.output
    assert (f"{point.url}: refreshed: CRL of {CA_NAME}, 1 revoked" in first.output)
    cached = cache_path(settings, point.url)
    assert cached.parent == cache and cached.name.startswith("AC-TEST.crl-")
    assert cached.read_bytes() == crls.revoking_der.read_bytes()
    assert f"{point.url}: unchanged" in runner.invoke(args=["crl", "refresh"]).output

    point.stop()
    failed = runner.invoke(args=["crl", "refresh"])
    assert failed.exit_code == 1 and f"{point.url}: FAILED" in failed.output
    assert cached.read_bytes() == crls.revoking_der.read_bytes()

    _sas_agenda(engine, database_url)
    env = {"CLIENT_CRL_URLS": point.url, "CLIENT_CRL_CACHE_DIR": str(cache)}
    with tls_live_server(database_url, crls.pki, tmp_path / "gunicorn.log", env=env) as server:
        assert_sas_bundle(*call(server, client_context(crls.pki, "sas"), "GET",
                                sas_url(MARTIN)))
        answer = call(server, client_context(crls.pki, "revoked"), "GET", sas_url(MARTIN))
    assert_outcome(*answer, 403, "was revoked on", f"from {point.url}")


@pytest.mark.parametrize(("served", "reason"), [
    ("forged", "bad signature"),
    ("older", "older than the cached CRL"),
    ("garbage", "not a readable CRL"),
])
def test_a_download_that_cannot_be_trusted_keeps_the_cached_crl(
        crls: Crls, point: DistributionPoint, tmp_path: Path, served: str, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = from_url(crls, point, tmp_path / "cache")
    assert [outcome.ok for outcome in crl_refresh.refresh(settings)] == [True]
    kept = cache_path(settings, point.url).read_bytes()
    older = crls.ca.crl(this_update=datetime.now(UTC) - timedelta(hours=2))
    point.served = {"forged": crls.forged.read_bytes(), "garbage": b"<html>maintenance</html>",
                    "older": older.public_bytes(Encoding.DER)}[served]
    [outcome] = crl_refresh.refresh(settings)
    assert not outcome.ok and reason in outcome.detail
    assert cache_path(settings, point.url).read_bytes() == kept
    assert f"CRL refresh FAILED for {point.url}" in caplog.text
    assert "stays in use" in caplog.text


def test_a_web_process_downloads_a_due_crl_in_the_background(
        crls: Crls, point: DistributionPoint, engine: Engine, database_url: str,
        tmp_path: Path) -> None:
    settings = from_url(crls, point, tmp_path / "cache", database_url=database_url)
    app = proxied_app(engine, database_url, settings)
    sas = _via_proxy(app, PROXY, client(crls, "sas").pem)
    # Nothing downloaded yet: refused (fail-closed) while the download starts, unawaited.
    assert_outcome(*_search(sas), 403, f"no CRL of its issuer {CA_NAME} is held")
    download = crl_refresh.background_thread()
    assert download is not None
    download.join(timeout=30)
    assert cache_path(settings, point.url).exists()
    assert_sas_bundle(*_search(sas))
    assert_outcome(*_search(_via_proxy(app, PROXY, client(crls, "revoked").pem)), 403,
                   "was revoked on")
    # Fresh now: looking again starts nothing.
    crl_refresh.forget_background_check()
    assert crl_refresh.refresh_in_background(settings) is None


def test_the_delivery_worker_refreshes_due_crls(
        crls: Crls, point: DistributionPoint, engine: Engine, database_url: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = from_url(crls, point, tmp_path / "cache", database_url=database_url)
    state = state_of(create_app(settings, engine=engine))
    worker = Worker(state, periodic=housekeeping(settings))
    worker.periodic.append(Periodic(3600, worker.stopping.set))
    caplog.set_level(logging.INFO, logger="app.auth.crl_refresh")
    worker.run()
    download = crl_refresh.background_thread()
    assert download is not None
    download.join(timeout=30)
    assert cache_path(settings, point.url).read_bytes() == crls.revoking_der.read_bytes()
    assert f"CRL from {point.url} refreshed: CRL of {CA_NAME}, 1 revoked" in caplog.text


# -- crl status ---------------------------------------------------------------------------------

def test_crl_status_describes_each_crl_and_what_is_wrong(
        crls: Crls, point: DistributionPoint, engine: Engine, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    this_update = (now - timedelta(days=2)).replace(microsecond=0)
    stale = write_crl(crls.ca.crl(this_update=this_update, next_update=now - timedelta(hours=1)),
                      tmp_path / "stale.pem")
    settings = production(crls.pki, client_crl_files=(str(crls.revoking), str(stale),
                                                      str(crls.forged)),
                          client_crl_urls=(point.url,),
                          client_crl_cache_dir=str(tmp_path / "cache"))
    result = create_app(settings, engine=engine).test_cli_runner().invoke(
        args=["crl", "status"])
    assert result.exit_code == 1  # something needs attention
    blocks = _blocks(result.output)
    revoking = crls.revoking_crl
    assert revoking.next_update_utc is not None
    assert blocks[str(crls.revoking)][:4] == [
        f"issuer: {CA_NAME}", f"thisUpdate: {revoking.last_update_utc.isoformat()}",
        f"nextUpdate: {revoking.next_update_utc.isoformat()}", "revoked serials: 1"]
    assert blocks[str(crls.revoking)][4].startswith("fresh: next update in ")
    # Stale, but the newer CRL of the same CA replaces it: nothing to worry about.
    assert blocks[str(stale)] == [
        f"issuer: {CA_NAME}", f"thisUpdate: {this_update.isoformat()}",
        f"nextUpdate: {(now - timedelta(hours=1)).replace(microsecond=0).isoformat()}",
        "revoked serials: 0",
        f"not used: superseded by the newer CRL from {crls.revoking}"]
    assert blocks[str(crls.forged)] == [
        f"UNUSABLE: bad signature: not signed by the key of {CA_NAME} in CLIENT_CA_BUNDLE"]
    assert blocks[point.url] == [
        f"cache: {cache_path(settings, point.url)} (downloaded never)",
        "UNUSABLE: not downloaded yet (run `fhir-agenda crl refresh`)"]


@pytest.mark.parametrize(("grace", "verdict"), [
    (24, ("STALE for 1h 0", "its issuer's certificates are refused in 22h 5")),
    (0.5, ("OUT OF DATE for 1h 0", "its issuer's certificates are refused")),
])
def test_crl_status_says_how_stale_a_crl_in_use_is(crls: Crls, engine: Engine, tmp_path: Path,
                                                  grace: float,
                                                  verdict: tuple[str, str]) -> None:
    now = datetime.now(UTC)
    stale = write_crl(crls.ca.crl(this_update=now - timedelta(days=2),
                                  next_update=now - timedelta(hours=1)), tmp_path / "stale.pem")
    result = create_app(with_crls(crls, stale, client_crl_grace_hours=grace),
                        engine=engine).test_cli_runner().invoke(args=["crl", "status"])
    assert result.exit_code == 1
    line = _blocks(result.output)[str(stale)][-1]
    assert line.startswith(verdict[0]) and verdict[1] in line, line


def test_crl_status_names_the_cas_left_without_a_crl(crls: Crls, engine: Engine) -> None:
    result = create_app(with_crls(crls, crls.forged), engine=engine).test_cli_runner().invoke(
        args=["crl", "status"])
    assert result.exit_code == 1
    assert (f"no CRL for the CA {CA_NAME}: its client certificates are refused"
            in result.output.splitlines())


def test_crl_status_without_crl_settings_says_revocation_is_off(crls: Crls,
                                                               engine: Engine) -> None:
    result = create_app(production(crls.pki), engine=engine).test_cli_runner().invoke(
        args=["crl", "status"])
    assert result.exit_code == 0
    assert "Revocation is not checked" in result.output


def _blocks(output: str) -> dict[str, list[str]]:
    """The status output, per source: its indented lines."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("  "):
            current.append(line.strip())
        else:
            current = blocks.setdefault(line, [])
    return blocks


# -- /metrics in process ------------------------------------------------------------------------

@pytest.mark.parametrize(("profile", "token", "authorization", "status"), [
    ("production", ADMIN_TOKEN, None, 401),
    ("production", ADMIN_TOKEN, "Bearer wrong", 401),
    ("production", None, f"Bearer {ADMIN_TOKEN}", 403),
    ("production", ADMIN_TOKEN, f"Bearer {ADMIN_TOKEN}", 200),
    ("development", None, None, 200),
])
def test_metrics_need_the_admin_token_in_production(
        crls: Crls, engine: Engine, profile: str, token: str | None,
        authorization: str | None, status: int) -> None:
    settings = with_crls(crls, crls.revoking, security_profile=profile, admin_token=token)
    headers = {"Authorization": authorization} if authorization else {}
    answer = create_app(settings, engine=engine).test_client().get("/metrics", headers=headers)
    assert answer.status_code == status
    if status == 200:
        text = answer.get_data(as_text=True)
        assert answer.content_type.startswith("text/plain")
        series = f'{{issuer="{CA_NAME}",source="{crls.revoking}"}}'
        assert f"fhir_agenda_crl_stale{series} 0.0" in text
        assert f"fhir_agenda_crl_expired{series} 0.0" in text
        assert 0 < gauge(text, "fhir_agenda_crl_next_update_seconds", series) <= 86400
        assert "# TYPE fhir_agenda_revoked_client_certificates_refused_total counter" in text
    else:
        assert "error" in answer.get_json()


# -- settings -----------------------------------------------------------------------------------

def test_crl_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings.from_env()
    assert (defaults.client_crl_files, defaults.client_crl_urls) == ((), ())
    assert not defaults.checks_revocation
    assert defaults.client_crl_refresh_minutes == 60
    assert defaults.client_crl_grace_hours == 24
    assert Path(defaults.client_crl_cache_dir) == INSTANCE_DIR / "crl"
    monkeypatch.setenv("CLIENT_CRL_FILES", "/etc/a.pem, /etc/b.der")
    monkeypatch.setenv("CLIENT_CRL_URLS", "http://igc.example/a.crl,https://igc.example/b.crl")
    monkeypatch.setenv("CLIENT_CRL_REFRESH_MINUTES", "15")
    monkeypatch.setenv("CLIENT_CRL_CACHE_DIR", "/var/cache/fhir-agenda/crl")
    monkeypatch.setenv("CLIENT_CRL_GRACE_HOURS", "0")
    settings = Settings.from_env()
    assert settings.client_crl_files == ("/etc/a.pem", "/etc/b.der")
    assert settings.client_crl_urls == ("http://igc.example/a.crl", "https://igc.example/b.crl")
    assert (settings.client_crl_refresh_minutes, settings.client_crl_grace_hours) == (15, 0)
    assert settings.client_crl_cache_dir == "/var/cache/fhir-agenda/crl"
    assert settings.checks_revocation
    monkeypatch.setenv("CLIENT_CRL_URLS", "ldap://igc.example/a.crl")
    with pytest.raises(ValueError, match="not an http"):
        Settings.from_env()

