"""The booking pages SAS's links open, through the Flask test client on both databases:
the regulator signs in with his password ("flux v1"; SSO is tested in test_web_sso.py),
the origin SAS appended opens his rights, the page shows what SAS shows, the form is
checked in French, booking writes a Patient and an Appointment that the booking rule and
the INT_R03 notifier see, and he follows up his appointments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import func, select, update

from app import create_app
from app.accounts.models import TERMS_VERSION
from app.config import Settings
from app.storage.schema import outbox, user_accounts, web_bookings
from app.web.display import day_label
from tests.support.accounts import PASSWORD, account_row, set_password
from tests.support.booking_pages import (
    HIDDEN,
    OFFERED,
    OPERATOR,
    SCHEDULE,
    TAKEN,
    booking_link,
    csrf,
    paris_day,
    patient_form,
    put_regulator,
    signed_up_regulator,
    text,
)

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

SAS_BASE = "https://sas.example/fhir"


@pytest.fixture
def app(engine: Engine, database_url: str) -> Flask:
    """The conftest app, with SAS's base set: booked appointments are queued for SAS."""
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    flask_app = create_app(Settings.from_env(
        database_url=database_url, fhir_base_url="http://localhost/fhir",
        public_web_url="http://localhost", secret_key="tests", sas_base_url=SAS_BASE),
        engine=engine)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def regulator(client: FlaskClient, engine: Engine) -> str:
    return signed_up_regulator(client, engine)


def _email(practitioner_id: str, engine: Engine) -> str:
    return str(account_row(engine, practitioner_id).email)


def sign_in(client: FlaskClient, engine: Engine, practitioner_id: str, link: str, *,
            accept_terms: bool = True) -> Any:
    """Open `link` as SAS does, sign in with the password, accept the terms; the page."""
    response = client.get(link)
    assert response.status_code == 302
    login = response.location
    assert login.startswith("/connexion?next=")
    token = csrf(client.get(login).get_data(as_text=True))
    response = client.post(login, data={"email": _email(practitioner_id, engine),
                                        "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.location == link
    response = client.get(link)
    if accept_terms and response.status_code == 302 and response.location.startswith("/cgu"):
        terms = response.location
        token = csrf(client.get(terms).get_data(as_text=True))
        assert client.post(terms, data={"csrf_token": token}).location == link
        response = client.get(link)
    return response


def book(client: FlaskClient, slot_id: str, **changes: str) -> Any:
    page = client.get(f"/agenda/{SCHEDULE}?creneau={slot_id}").get_data(as_text=True)
    return client.post(f"/agenda/{SCHEDULE}", data=patient_form(slot_id, csrf(page), **changes))


def fhir(client: FlaskClient, path: str) -> Any:
    response = client.get(f"/fhir/{path}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# -- the page SAS opens ---------------------------------------------------------------------

def test_the_page_shows_what_sas_shows_with_the_chosen_slot_highlighted(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    response = sign_in(client, engine, regulator, booking_link("video-1"))
    page = response.get_data(as_text=True)
    shown = text(page)
    assert response.status_code == 200 and '<html lang="fr">' in page
    assert "Prendre rendez-vous avec Dr Hélène Dupont" in shown
    assert "Médecine générale" in shown and "Cabinet des Terreaux" in shown
    assert "4 place des Terreaux, 69001 Lyon" in shown and "04 78 00 00 01" in shown
    assert 'href="tel:+33478000001"' in page
    # Only SAS-visible free slots of the next 72 h, by day, with type and reason.
    for slot_id in OFFERED:
        assert f'value="{slot_id}"' in page
    for slot_id in HIDDEN:
        assert f'value="{slot_id}"' not in page
    days = [day_label(paris_day(n)).capitalize() for n in (1, 2)]  # "Mardi 1er décembre…"
    assert shown.index(days[0]) < shown.index(days[1])
    assert "09:00 – 09:20 Au cabinet · Consultation de médecine générale" in shown
    assert "10:00 – 10:20 Téléconsultation · Téléconsultation de suivi" in shown
    assert "14:00 – 14:30 À domicile · Visite à domicile" in shown
    # The slot chosen on SAS: checked, highlighted, said.
    assert '<li class="choisi">' in page
    assert re.search(r'id="c-video-1" value="video-1"\s+checked>', page)
    assert len(re.findall(r"\bchecked>", page)) == 1
    assert shown.count("Créneau choisi sur le SAS") == 1
    assert shown.index("Créneau choisi sur le SAS") > shown.index("10:00 – 10:20")
    # Every field has its label; the form carries its CSRF token.
    for field in ("nom", "prenom", "naissance", "telephone", "email"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    assert 'name="csrf_token"' in page
    assert client.get("/compte").get_data(as_text=True).count("actifs") == 1


def test_a_chosen_slot_no_longer_offered_is_said(client: FlaskClient, engine: Engine,
                                                 regulator: str) -> None:
    shown = text(sign_in(client, engine, regulator, booking_link("occupe-1"))
                 .get_data(as_text=True))
    assert "Le créneau choisi sur le SAS n'est plus disponible" in shown
    assert "Créneau choisi sur le SAS " not in shown


def test_an_agenda_sas_does_not_see_is_a_french_404(client: FlaskClient, engine: Engine,
                                                    regulator: str) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    response = client.get("/agenda/inconnu?creneau=x")
    assert response.status_code == 404
    assert "n'est pas ouvert à la prise de rendez-vous par le SAS" in text(
        response.get_data(as_text=True))


# -- who may book -----------------------------------------------------------------------------

def test_without_origin_the_password_session_has_no_regulator_right(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    response = sign_in(client, engine, regulator, booking_link("cabinet-1", origin=None))
    assert response.status_code == 403
    shown = text(response.get_data(as_text=True))
    assert "ne sont ouverts que dans une session arrivée depuis la plateforme numérique SAS" \
        in shown
    assert "aucun" in text(client.get("/compte").get_data(as_text=True))
    refused = fhir(client, f"AuditEvent?entity=Schedule/{SCHEDULE}&outcome=4")
    assert refused["total"] == 1
    assert "no booking right" in refused["entry"][0]["resource"]["outcomeDesc"]
    # Booking is refused too, not only the page.
    response = client.post(f"/agenda/{SCHEDULE}", data=patient_form(
        "cabinet-1", csrf(client.get("/deconnexion").get_data(as_text=True))))
    assert response.status_code == 403
    assert fhir(client, "Appointment")["total"] == 0


def test_an_unknown_origin_opens_nothing(client: FlaskClient, engine: Engine,
                                         regulator: str) -> None:
    response = sign_in(client, engine, regulator, booking_link("cabinet-1", origin="autre"))
    assert response.status_code == 403


def test_arriving_from_sas_upgrades_a_session_opened_without_origin(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    assert sign_in(client, engine, regulator, booking_link("cabinet-1", origin=None)
                   ).status_code == 403
    # The SAS link: the old session ends, a new sign-in (from SAS this time) is asked.
    response = client.get(booking_link("cabinet-1"))
    assert response.status_code == 302 and response.location.startswith("/connexion?next=")
    assert client.get("/compte").status_code == 302  # signed out
    assert sign_in(client, engine, regulator, booking_link("cabinet-1")).status_code == 200


def test_the_sas_link_unauthenticated_without_sso_goes_to_the_login_page(
        client: FlaskClient, regulator: str) -> None:
    for origin in ("sas", None):
        response = client.get(booking_link("cabinet-1", origin=origin), follow_redirects=True)
        shown = text(response.get_data(as_text=True))
        assert response.status_code == 200 and "Connexion" in shown and "Mot de passe" in shown
    assert "Vous arrivez depuis la plateforme numérique SAS" in text(client.get(
        f"/connexion?next={quote(booking_link('cabinet-1'))}").get_data(as_text=True))


def test_a_deactivated_regulator_loses_the_page_at_once(client: FlaskClient, engine: Engine,
                                                        regulator: str) -> None:
    assert sign_in(client, engine, regulator, booking_link("cabinet-1")).status_code == 200
    put_regulator(client, active=False)
    response = client.get(booking_link("cabinet-1"))
    assert response.status_code == 302 and response.location.startswith("/connexion")


# -- terms of use -----------------------------------------------------------------------------

def test_terms_come_first_and_are_asked_again_for_a_new_version(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    link = booking_link("cabinet-1")
    response = sign_in(client, engine, regulator, link, accept_terms=False)
    assert response.status_code == 302 and response.location.startswith("/cgu?next=")
    assert unquote(response.location) == f"/cgu?next={link}"
    terms = client.get(response.location).get_data(as_text=True)
    assert f"Version {TERMS_VERSION}" in text(terms)
    assert client.get("/rendez-vous").location.startswith("/cgu")  # nothing else first
    client.post(response.location, data={"csrf_token": csrf(terms)})
    row = account_row(engine, regulator)
    assert row.terms_version == TERMS_VERSION and row.terms_accepted_at is not None
    assert client.get(link).status_code == 200
    # The text changes (an older version on record): asked again, with the new date.
    with engine.begin() as conn:
        conn.execute(update(user_accounts).where(user_accounts.c.pk == row.pk)
                     .values(terms_version="2020-01"))
    response = client.get(link)
    assert response.status_code == 302 and response.location.startswith("/cgu")
    shown = text(client.get(response.location).get_data(as_text=True))
    assert "ont changé depuis votre dernière acceptation (version 2020-01)" in shown
    client.post(response.location, data={"csrf_token": csrf(client.get(
        response.location).get_data(as_text=True))})
    again = account_row(engine, regulator)
    assert again.terms_version == TERMS_VERSION
    assert again.terms_accepted_at >= row.terms_accepted_at
    assert client.get(link).status_code == 200


# -- the form ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"nom": ""}, "nom", "Le nom est obligatoire."),
    ({"prenom": "L3a"}, "prenom", "Le prénom ne peut contenir que des lettres"),
    ({"naissance": ""}, "naissance", "La date de naissance est obligatoire."),
    ({"naissance": "31/02/1985"}, "naissance", "Date de naissance invalide"),
    ({"naissance": "2999-01-01"}, "naissance", "ne peut pas être dans le futur"),
    ({"telephone": "12"}, "telephone", "Numéro de téléphone invalide"),
    ({"email": "lea@"}, "email", "Adresse électronique invalide."),
    ({"creneau": ""}, "creneau", "Choisissez un créneau."),
])
def test_form_errors_are_french_and_next_to_their_field(
        client: FlaskClient, engine: Engine, regulator: str, changes: dict[str, str],
        field: str, message: str) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    response = book(client, "cabinet-1", **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<p class="erreur-champ" id="{field}-erreur">' in page
    assert message in text(page[page.index(f'id="{field}-erreur"'):])
    if field != "creneau":
        assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"[^>]*autofocus', page)
        assert page.count("autofocus") == 1  # the wrong field has the focus
    assert "Le formulaire contient des erreurs" in text(page)
    assert fhir(client, "Appointment")["total"] == 0
    # What was typed is kept (apart from the wrong field).
    assert 'value="Durand"' in page or field == "nom"


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, engine: Engine,
                                                  regulator: str) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    response = client.post(f"/agenda/{SCHEDULE}", data=patient_form("cabinet-1", "forged"))
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response.get_data(as_text=True))
    assert fhir(client, "Appointment")["total"] == 0


# -- booking ----------------------------------------------------------------------------------

def test_booking_creates_the_patient_and_the_appointment_for_sas(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    response = book(client, "cabinet-1", telephone="06.12.34.56.78", email="")
    assert response.status_code == 303
    appointment_id = response.location.rsplit("/", 1)[1]
    confirmation = text(client.get(response.location).get_data(as_text=True))
    assert "Le rendez-vous est confirmé" in confirmation and "Confirmé" in confirmation
    assert f"{day_label(paris_day(1))}, 09:00 – 09:20" in confirmation
    assert "Dr Hélène Dupont" in confirmation and "Cabinet des Terreaux" in confirmation
    assert "Léa Durand" in confirmation and "12/04/1985" in confirmation
    assert "06 12 34 56 78" in confirmation
    appointment = fhir(client, f"Appointment/{appointment_id}")
    assert appointment["status"] == "booked"
    assert appointment["slot"] == [{"reference": "Slot/cabinet-1"}]
    assert appointment["extension"] == [{"url": OPERATOR, "valueReference": {
        "reference": f"Practitioner/{regulator}"}}]
    actors = [p["actor"]["reference"] for p in appointment["participant"]]
    assert actors[0] == "Practitioner/dupont" and actors[1].startswith("Patient/")
    assert {p["status"] for p in appointment["participant"]} == {"accepted"}
    slot = fhir(client, "Slot/cabinet-1")
    assert (appointment["start"], appointment["end"]) == (slot["start"], slot["end"])
    patient = fhir(client, actors[1].replace("Patient/", "Patient/"))
    assert patient["name"] == [{"use": "official", "family": "Durand", "given": ["Léa"]}]
    assert patient["birthDate"] == "1985-04-12"
    assert patient["telecom"] == [{"system": "phone", "value": "+33612345678"}]
    # The booking rule: the slot is busy, SAS no longer sees it.
    assert slot["status"] == "busy"
    assert 'value="cabinet-1"' not in client.get(
        f"/agenda/{SCHEDULE}").get_data(as_text=True)
    # INT_R03: SAS is told (the outbox holds the POST the worker will deliver).
    with engine.connect() as conn:
        queued = conn.execute(select(outbox.c.method, outbox.c.url)
                              .where(outbox.c.subscriber == "sas")).all()
    assert [tuple(row) for row in queued] == [("POST", f"{SAS_BASE}/Appointment")]
    # Who did it: the version's author and the audit trail name the regulator.
    history = fhir(client, f"Appointment/{appointment_id}/_history")
    assert f"Practitioner/{regulator}" in str(history)


def test_a_taken_slot_is_said_in_french_with_the_refreshed_list(
        client: FlaskClient, engine: Engine, regulator: str, app: Flask) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    page = client.get(f"/agenda/{SCHEDULE}?creneau=cabinet-1").get_data(as_text=True)
    assert book(client, "cabinet-1").status_code == 303
    # The same form again (a second click, or a colleague a moment later).
    response = client.post(f"/agenda/{SCHEDULE}", data=patient_form("cabinet-1", csrf(page)))
    shown = text(response.get_data(as_text=True))
    assert response.status_code == 409
    assert TAKEN in shown
    assert 'value="cabinet-1"' not in response.get_data(as_text=True)
    assert 'value="video-1"' in response.get_data(as_text=True)
    assert 'value="Durand"' in response.get_data(as_text=True)  # nothing to type again
    assert fhir(client, "Appointment?slot=Slot/cabinet-1")["total"] == 1


def test_the_regulator_follows_up_his_appointments(client: FlaskClient, engine: Engine,
                                                   regulator: str) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    first = book(client, "cabinet-1").location.rsplit("/", 1)[1]
    second = book(client, "video-1", nom="Martin", prenom="Paul").location.rsplit("/", 1)[1]
    third = book(client, "domicile-2", nom="Petit", prenom="Zoé").location.rsplit("/", 1)[1]
    listing = text(client.get("/rendez-vous").get_data(as_text=True))
    assert listing.index("Zoé Petit") < listing.index("Paul Martin") < listing.index(
        "Léa Durand")  # newest first
    token = csrf(client.get(f"/rendez-vous/{first}").get_data(as_text=True))
    for appointment_id, action, status, label in (
            (first, "annuler", "cancelled", "Le rendez-vous est annulé."),
            (second, "honore", "fulfilled", "marqué comme honoré"),
            (third, "non-honore", "noshow", "marqué comme non honoré")):
        response = client.post(f"/rendez-vous/{appointment_id}/{action}",
                               data={"csrf_token": token}, follow_redirects=True)
        assert label in text(response.get_data(as_text=True))
        assert fhir(client, f"Appointment/{appointment_id}")["status"] == status
    # Cancelling gave the slot back (the booking rule); SAS sees it again.
    assert fhir(client, "Slot/cabinet-1")["status"] == "free"
    assert 'value="cabinet-1"' in client.get(f"/agenda/{SCHEDULE}").get_data(as_text=True)
    # Each change is queued for SAS after the creation: one POST, then a PUT per change.
    with engine.connect() as conn:
        methods = conn.execute(select(outbox.c.method).where(outbox.c.subscriber == "sas")
                               .order_by(outbox.c.pk)).scalars().all()
    assert sorted(methods) == ["POST"] * 3 + ["PUT"] * 3
    # A closed appointment cannot change any more.
    response = client.post(f"/rendez-vous/{first}/honore", data={"csrf_token": token},
                           follow_redirects=True)
    assert "ne peut plus être modifié (statut : annulé)" in text(response.get_data(
        as_text=True))
    assert fhir(client, f"Appointment/{first}")["status"] == "cancelled"


def test_another_regulator_cannot_see_nor_change_my_appointments(
        client: FlaskClient, engine: Engine, regulator: str, app: Flask) -> None:
    sign_in(client, engine, regulator, booking_link("cabinet-1"))
    mine = book(client, "cabinet-1").location.rsplit("/", 1)[1]
    other_id = put_regulator(client, "810009876543", family="BERNARD")
    set_password(engine, other_id)
    other = app.test_client()
    sign_in(other, engine, other_id, booking_link("video-1"))
    assert "Vous n'avez encore pris aucun rendez-vous" in text(
        other.get("/rendez-vous").get_data(as_text=True))
    assert other.get(f"/rendez-vous/{mine}").status_code == 404
    token = csrf(other.get("/deconnexion").get_data(as_text=True))
    assert other.post(f"/rendez-vous/{mine}/annuler", data={"csrf_token": token}
                      ).status_code == 404
    assert fhir(client, f"Appointment/{mine}")["status"] == "booked"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(web_bookings)).scalar() == 1


def test_the_sas_answer_links_each_slot_to_its_booking_page(client: FlaskClient,
                                                            regulator: str) -> None:
    from tests.support.booking_pages import DOCTOR_RPPS, paris

    response = client.get("/fhir/Slot", query_string=[
        ("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor"),
        ("start", f"ge{paris(0, 0)}"), ("start", f"le{paris(2, 23)}"),
        ("schedule.actor:Practitioner.identifier", f"urn:oid:1.2.250.1.71.4.2.1|{DOCTOR_RPPS}"),
        ("status", "free")])
    slots = [e["resource"] for e in response.get_json()["entry"]
             if e["resource"]["resourceType"] == "Slot"]
    assert {s["id"] for s in slots} == set(OFFERED)
    for slot in slots:
        assert slot["comment"] == f"http://localhost/agenda/{SCHEDULE}?creneau={slot['id']}"
        # SAS appends its origin with "&": the link stays a link to the same slot.
        assert client.get(slot["comment"] + "&origin=sas-preprod").status_code == 302


def test_french_days_and_phones() -> None:
    from datetime import date

    from app.web.display import french_phone

    assert day_label(date(2026, 12, 1)) == "mardi 1er décembre 2026"
    assert day_label(date(2027, 8, 15)) == "dimanche 15 août 2027"
    assert french_phone("+33478000001") == "04 78 00 00 01"
    assert french_phone("+262262123456") == "+262262123456"  # overseas: as published


def test_the_demo_regulator_is_the_development_providers_identity(client: FlaskClient) -> None:
    import json

    from app.accounts.identity import FOUND, Identity, regulator_account
    from app.demo import DEMO_DIR, demo_regulators_bundle

    for _ in range(2):  # loading twice changes nothing (conditional PUTs)
        response = client.post("/fhir", json=demo_regulators_bundle())
        assert response.status_code == 200, response.get_data(as_text=True)
    assert fhir(client, "Practitioner?_source=urn:oid:1.2.250.1.213.3.6")["total"] == 1
    claims = json.loads((DEMO_DIR / "dev_idp_accounts.json").read_text())["demo-regulateur"]
    with client.application.app_context():
        from app.state import current_state

        with current_state().reading() as repo:
            match = regulator_account(repo.conn, Identity(claims["SubjectNameID"], None))
    assert match.outcome == FOUND and match.account is not None
    assert match.account.family == claims["family_name"]


# -- an SOS Médecins fixed place ------------------------------------------------------------

def test_an_sos_place_is_booked_from_its_page(client: FlaskClient, engine: Engine,
                                              regulator: str) -> None:
    """SAS links the SOS offer's slots to the same page: it shows the association's place,
    and the appointment is with the place (the association names the doctor later)."""
    from tests.sas_data import load
    from tests.sas_offers import sos
    from tests.support.booking_pages import paris

    stored = [r for r in sos() if r["id"] in {"sos-rennes", "pfg-nord", "sch-nord", "n-1"}]
    for resource in stored:
        if resource["id"] == "n-1":
            resource.update(start=paris(1, 18), end=paris(1, 18, 30))
    load(client, stored)
    link = "/agenda/sch-nord?creneau=n-1&origin=sas"
    page = sign_in(client, engine, regulator, link).get_data(as_text=True)
    shown = text(page)
    assert "Prendre rendez-vous avec SOS Médecins de Rennes" in shown
    assert "Centre de consultation Rennes Nord" in shown
    assert "320 avenue Général George Patton, 35700 RENNES" in shown
    assert "02 99 24 67 89" in shown and "18:00 – 18:30" in shown
    response = client.post("/agenda/sch-nord", data=patient_form("n-1", csrf(page)))
    assert response.status_code == 303, text(response.get_data(as_text=True))
    appointment_id = response.location.rsplit("/", 1)[-1]
    appointment = fhir(client, f"Appointment/{appointment_id}")
    assert appointment["participant"][0]["actor"] == {"reference": "Location/pfg-nord"}
    assert fhir(client, "Slot/n-1")["status"] == "busy"
    confirmation = text(client.get(response.location).get_data(as_text=True))
    assert "SOS Médecins de Rennes" in confirmation
