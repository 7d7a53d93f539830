"""Fifty regulators confirm the same slot on the booking pages at once (gunicorn with 4
processes of 8 threads, both databases): one booking, and 49 French "ce créneau vient
d'être pris" pages with the refreshed list. The booking rule itself (app/scheduling) is
tested through the FHIR API in test_booking.py."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests
from sqlalchemy import Engine, func, select

from app.storage.schema import web_bookings
from tests.support.accounts import PASSWORD, account_row, set_password
from tests.support.booking_pages import (
    SCHEDULE,
    TAKEN,
    LiveFhir,
    booking_link,
    csrf,
    doctor_agenda,
    patient_form,
    put_regulator,
)
from tests.support.live_server import LiveServer

ATTEMPTS = 50


def _signed_in(site: str, email: str) -> requests.Session:
    """A regulator's browser signed in from SAS's link with his password (flux v1)."""
    browser = requests.Session()
    login = f"{site}/connexion?next={quote(booking_link('cabinet-1'))}"
    token = csrf(browser.get(login, timeout=30).text)
    response = browser.post(login, data={"email": email, "password": PASSWORD,
                                         "csrf_token": token}, allow_redirects=False,
                            timeout=30)
    assert response.status_code == 302, response.text
    return browser


def _name(n: int) -> str:
    """A distinct family name per attempt (letters only, as the form wants)."""
    return f"Patient {chr(65 + n // 26)}{chr(97 + n % 26)}"


def test_fifty_regulators_confirm_one_slot_at_once(threaded_server: LiveServer,
                                                   engine: Engine) -> None:
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    site = threaded_server.base_url.removesuffix("/fhir")
    fhir = LiveFhir(threaded_server.base_url)
    fhir.load(doctor_agenda())
    regulator = put_regulator(fhir)
    set_password(engine, regulator)
    email = str(account_row(engine, regulator).email)
    with ThreadPoolExecutor(max_workers=10) as pool:
        browsers = list(pool.map(lambda _: _signed_in(site, email), range(ATTEMPTS)))
    first = browsers[0]
    terms = first.get(f"{site}/cgu", timeout=30).text
    first.post(f"{site}/cgu", data={"csrf_token": csrf(terms)}, timeout=30)
    forms = [patient_form("cabinet-1", csrf(b.get(f"{site}{booking_link('cabinet-1')}",
                                                  timeout=30).text), nom=_name(n))
             for n, b in enumerate(browsers)]
    start = threading.Barrier(ATTEMPTS, timeout=60)

    def confirm(n: int) -> requests.Response:
        start.wait()
        return browsers[n].post(f"{site}/agenda/{SCHEDULE}", data=forms[n],
                                allow_redirects=False, timeout=60)

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        answers = list(pool.map(confirm, range(ATTEMPTS)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(303) == 1 and statuses.count(409) == ATTEMPTS - 1, statuses
    for answer in answers:
        if answer.status_code == 409:
            assert TAKEN in answer.text.replace("&#39;", "'")
            assert 'value="cabinet-1"' not in answer.text  # the refreshed list
            assert 'value="video-1"' in answer.text
    # One appointment, on a busy slot; the losers left no Patient behind.
    assert fhir.read("Appointment?slot=Slot/cabinet-1")["total"] == 1
    assert fhir.read("Slot/cabinet-1")["status"] == "busy"
    assert fhir.read("Patient?_summary=count")["total"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(web_bookings)).scalar() == 1
