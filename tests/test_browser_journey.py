"""The regulator's journey end to end, in headless Chromium (Debian's `chromium`, driven by
Playwright; no browser is downloaded), on both databases, with every real component:
gunicorn serving the application, an OpenID Connect provider standing in for Pro Santé
Connect (oidc-provider, PSC's claim names), a stand-in SAS receiver over mutual TLS and
the delivery worker.

SAS link with `&origin=sas` → provider login → terms of use → agenda → booking →
confirmation, then the Appointment through the FHIR API, the Slot busy and the POST SAS
received; already signed in at the provider → no login step; no origin → no regulator
right; a deactivated regulator → refused. The run takes a screenshot of each page;
UPDATE_SCREENSHOTS=1 writes them to docs/screenshots/ (the README shows them).

Run these alone with `pytest -m browser`; `make browser-tools` installs Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from tests.support.booking_pages import (
    DOCTOR_RPPS,
    REGULATOR_RPPS,
    SCHEDULE,
    LiveFhir,
    doctor_agenda,
    paris,
    put_regulator,
)
from tests.support.dev_idp import DevIdp, psc_identity
from tests.support.live_server import LiveServer
from tests.support.pki import Pki
from tests.support.receiver import SasReceiver
from tests.support.sas_agenda import start_worker, stop_worker, worker_env
from tests.support.sas_fixtures import pki_fixture, sas_ca_bundle_only  # noqa: F401

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# The README's pictures are refreshed on demand (UPDATE_SCREENSHOTS=1): a test run does not
# rewrite tracked files; otherwise the shots go to a scratch folder, still taken and checked.
SHOTS = (Path(__file__).resolve().parents[1] / "docs" / "screenshots"
         if os.environ.get("UPDATE_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "fhir-agenda-screenshots")
DEACTIVATED_RPPS = "810001111118"
# What Chromium runs with: no sandbox (CI containers), nothing fetched in the background.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@dataclass
class World:
    site: str
    fhir: LiveFhir
    idp: DevIdp
    sas: SasReceiver
    backend: str

    def get(self, path: str) -> Any:
        return self.fhir.read(path)


@pytest.fixture(scope="module")
def servers(database_url: str, engine: Engine, db_backend: str, pki: Pki,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make browser-tools`", pytrace=False)
    logs = tmp_path_factory.mktemp("journey")
    server = LiveServer(database_url, logs / "gunicorn.log", workers=2,
                        args=["--threads", "4"])
    site = server.base_url.removesuffix("/fhir")
    with SasReceiver(pki) as sas, DevIdp({
            "regulateur": psc_identity(REGULATOR_RPPS),
            "desactive": psc_identity(DEACTIVATED_RPPS, family="DESACTIVE")},
            site, logs / "idp.log") as idp:
        server.env.update({
            "PUBLIC_WEB_URL": site, "SECRET_KEY": "journey", **idp.environment(),
            "SAS_BASE_URL": sas.base_url, "SAS_CLIENT_CERT": str(pki.client_cert),
            "SAS_CLIENT_KEY": str(pki.client_key), "SAS_CA_BUNDLE": str(pki.ca_cert)})
        worker = start_worker(worker_env(database_url, sas, pki, FHIR_BASE_URL=server.base_url),
                              logs / "worker.log")
        try:
            with server:
                yield World(site, LiveFhir(server.base_url), idp, sas, db_backend)
        finally:
            stop_worker(worker)


@pytest.fixture
def world(servers: World, engine: Engine) -> World:
    """Fresh data: Dr Dupont's agenda and the regulator account SAS created."""
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    servers.sas.reset()
    servers.fhir.load(doctor_agenda())
    put_regulator(servers.fhir)
    return servers


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary --user-data-dir of its own.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=DESKTOP, locale="fr-FR",
                                   timezone_id="Europe/Paris")
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def shoot(world: World, page: Any, name: str) -> None:
    """SHOTS/<name>.png, once per run (on the first database of the run)."""
    if world.backend == "sqlite" or not (SHOTS / f"{name}.png").exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def sas_link(world: World, slot_id: str) -> str:
    """The Slot.comment of the SAS answer for this slot (what SAS opens, before `&origin`)."""
    answer = world.get(
        f"Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
        f"&start=ge{requests.utils.quote(paris(0, 0))}&start=le{requests.utils.quote(paris(2, 23))}"
        f"&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|{DOCTOR_RPPS}"
        f"&status=free")
    (slot,) = [e["resource"] for e in answer["entry"] if e["resource"]["id"] == slot_id]
    return str(slot["comment"])


def provider_login(page: Any, login: str) -> None:
    assert "Fournisseur d'identité de DÉVELOPPEMENT" in page.content()
    with page.expect_navigation():
        page.click(f'button[name="login"][value="{login}"]')


def test_the_regulator_books_from_the_sas_link_and_sas_is_told(world: World,
                                                               page: Any) -> None:
    link = sas_link(world, "video-1")
    assert link == f"{world.site}/agenda/{SCHEDULE}?creneau=video-1"
    page.goto(link + "&origin=sas")
    assert page.url.startswith(world.idp.issuer)  # straight to the provider
    shoot(world, page, "01-connexion-fournisseur-identite")
    provider_login(page, "regulateur")
    assert "/cgu" in page.url
    shoot(world, page, "02-cgu")
    with page.expect_navigation():
        page.get_by_role("button", name="J'accepte les conditions générales d'utilisation").click()
    assert page.url == link + "&origin=sas"
    assert page.locator("html").get_attribute("lang") == "fr"
    chosen = page.locator("li.choisi")
    assert chosen.count() == 1 and "Créneau choisi sur le SAS" in chosen.inner_text()
    assert page.locator("#c-video-1").is_checked()
    shoot(world, page, "03-agenda")
    page.set_viewport_size(PHONE)
    shoot(world, page, "03-agenda-telephone")
    page.set_viewport_size(DESKTOP)
    # Keyboard: the first stop is the skip link, then the page's own links and fields.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    # A mistake first: French messages next to their fields.
    page.get_by_label("Nom", exact=True).fill("Durand")
    page.get_by_label("Prénom").fill("Léa")
    page.get_by_label("Date de naissance").fill("12/04/1985")
    page.get_by_label("Téléphone").fill("12")
    with page.expect_navigation():
        page.get_by_role("button", name="Confirmer le rendez-vous").click()
    assert "Numéro de téléphone invalide" in page.locator("#telephone-erreur").inner_text()
    assert page.get_by_label("Téléphone").get_attribute("aria-invalid") == "true"
    shoot(world, page, "04-agenda-erreurs")
    page.locator("#c-video-1").check()
    page.get_by_label("Téléphone").fill("06 12 34 56 78")
    with page.expect_navigation():
        page.get_by_role("button", name="Confirmer le rendez-vous").click()
    assert "Le rendez-vous est confirmé" in page.content()
    shoot(world, page, "05-confirmation")
    appointment_id = page.url.rsplit("/", 1)[1]

    # Through the FHIR API: the appointment, its operator, the slot busy.
    appointment = world.get(f"Appointment/{appointment_id}")
    assert appointment["status"] == "booked"
    assert appointment["slot"] == [{"reference": "Slot/video-1"}]
    assert appointment["extension"][0]["url"] == (
        "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator")
    assert world.get("Slot/video-1")["status"] == "busy"
    # SAS received it (INT_R03, over mutual TLS, delivered by the worker).
    (posted,) = world.sas.wait_for_requests(1, timeout=30)
    assert (posted.method, posted.path, posted.status) == ("POST", "/fhir/Appointment", 201)
    assert posted.body["status"] == "booked"
    assert posted.body["participant"][0]["actor"]["identifier"]["value"] == DOCTOR_RPPS
    assert posted.body["extension"][0]["valueReference"]["identifier"]["value"] == \
        REGULATOR_RPPS
    assert posted.body["start"] == appointment["start"]

    # His appointments; "not honoured" reaches SAS as a conditional PUT.
    page.get_by_role("link", name="Mes rendez-vous", exact=True).click()
    page.wait_for_load_state()
    assert "Léa Durand" in page.content()
    shoot(world, page, "06-mes-rendez-vous")
    page.get_by_role("link", name=re.compile("^Voir")).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Marquer comme non honoré").click()
    assert "marqué comme non honoré" in page.content()
    updates = world.sas.wait_for_requests(2, timeout=30)
    assert (updates[1].method, updates[1].body["status"]) == ("PUT", "noshow")
    assert world.get(f"Appointment/{appointment_id}")["status"] == "noshow"

    # Already signed in at the provider: a new session here needs no login step there.
    page.context.clear_cookies(name="session")
    page.goto(sas_link(world, "cabinet-1") + "&origin=sas")
    assert page.url == f"{world.site}/agenda/{SCHEDULE}?creneau=cabinet-1&origin=sas"
    assert page.locator("#c-cabinet-1").is_checked()

    # Logout: here and at the provider, back on our page.
    page.get_by_role("link", name="Se déconnecter").click()
    page.get_by_role("button", name="Se déconnecter").click()
    # Through the provider's end_session_endpoint (which signs out at once) back to us.
    page.wait_for_url(re.compile(r"/deconnexion/terminee"))
    assert "Vous êtes déconnecté" in page.content()
    shoot(world, page, "07-deconnecte")
    page.goto(sas_link(world, "cabinet-1") + "&origin=sas")
    assert "Fournisseur d'identité de DÉVELOPPEMENT" in page.content()  # login asked again


def test_without_origin_the_regulator_has_no_regulator_right(world: World, page: Any) -> None:
    link = sas_link(world, "cabinet-1")
    page.goto(link)  # as the ANS kit's first SSO test: an HTML page with a login word
    assert page.url.startswith(f"{world.site}/connexion")
    assert "Connexion" in page.content()
    shoot(world, page, "08-connexion")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("Se connecter avec")).click()
    provider_login(page, "regulateur")
    with page.expect_navigation():
        page.get_by_role("button", name="J'accepte les conditions générales d'utilisation").click()
    assert page.url == link
    assert "Ouvrez ce créneau depuis le SAS" in page.content()
    assert page.locator("form.reservation").count() == 0
    shoot(world, page, "09-sans-origine")
    assert world.get("AuditEvent?outcome=4&entity=Schedule/" + SCHEDULE)["total"] == 1


def test_a_deactivated_regulator_is_refused(world: World, page: Any) -> None:
    put_regulator(world.fhir, DEACTIVATED_RPPS, family="DESACTIVE", active=False)
    page.goto(sas_link(world, "cabinet-1") + "&origin=sas")
    provider_login(page, "desactive")
    assert "Votre compte régulateur a été désactivé" in page.content()
    shoot(world, page, "10-compte-desactive")
    page.goto(f"{world.site}/compte")
    assert page.url.startswith(f"{world.site}/connexion")  # no session was opened
    assert world.get("AuditEvent?outcome=4&type=110114")["total"] == 1


def test_chromium_is_debians(world: World) -> None:
    version = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    assert version.startswith("Chromium ") and shutil.which("chromium") == str(CHROMIUM)
