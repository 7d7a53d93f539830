"""Forgotten password through the pages, with mail delivered to a real SMTP server (aiosmtpd):
the link works once, expires, and the form never tells whether an address has an account."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select, update

from app.accounts.models import utcnow
from app.db import write_transaction
from app.state import state_of
from app.storage.schema import password_resets, user_sessions
from tests.support.accounts import csrf_from, login, regulator, set_password, sync, text
from tests.support.smtp import Received, SmtpServer

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine
    from werkzeug.test import TestResponse

EMAIL = "jeanne.martin@example.fr"
NEW_PASSWORD = "une phrase de passe neuve"
PUBLIC_URL = "https://agenda.example.fr"
LINK_RE = re.compile(re.escape(PUBLIC_URL) + r"(/reinitialiser/[A-Za-z0-9_-]+)")
SENT = "Si un compte actif correspond à cette adresse"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def app(app: Flask, smtp: SmtpServer) -> Flask:
    """The conftest app, sending its mail to our SMTP server."""
    smtp.received.clear()
    state = state_of(app)
    state.settings = dataclasses.replace(
        state.settings, smtp_host=smtp.host, smtp_port=smtp.port, public_web_url=PUBLIC_URL,
        mail_from="Agenda SAS <agenda@example.fr>", password_reset_ttl_minutes=30)
    return app


@pytest.fixture
def jeanne(app: Flask, engine: Engine) -> str:
    sync(engine, "regul-1", regulator())
    set_password(engine, "regul-1")
    return "regul-1"


def _ask(client: FlaskClient, email: str) -> str:
    response = client.post("/mot-de-passe-oublie", data={
        "email": email, "csrf_token": csrf_from(client, "/mot-de-passe-oublie")})
    assert response.status_code == 200
    return text(response)


def _link_in(mail: Received) -> str:
    match = LINK_RE.search(mail.body)
    assert match, mail.body
    return match.group(1)


def _choose(client: FlaskClient, path: str, password: str,
            confirmation: str | None = None) -> TestResponse:
    return client.post(path, data={"password": password,
                                   "confirmation": password if confirmation is None
                                   else confirmation,
                                   "csrf_token": csrf_from(client, "/mot-de-passe-oublie")})


def test_reset_mail_arrives_and_its_link_sets_the_password(
        client: FlaskClient, smtp: SmtpServer, jeanne: str) -> None:
    page = text(client.get("/mot-de-passe-oublie"))
    assert "Mot de passe oublié" in page and "Recevoir un lien de réinitialisation" in page
    assert SENT in _ask(client, "Jeanne.Martin@example.fr")

    [mail] = smtp.received
    assert mail.rcpt_tos == [EMAIL] and mail.mail_from == "agenda@example.fr"
    assert mail.message["Subject"] == "Réinitialisation de votre mot de passe"
    assert "Bonjour Jeanne MARTIN," in mail.body
    assert "expire dans 30 minutes" in mail.body
    path = _link_in(mail)

    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the token is in the URL
    page = text(response)
    assert "Choisir un nouveau mot de passe" in page and "Confirmation" in page

    response = _choose(client, path, NEW_PASSWORD)
    assert response.status_code == 302 and response.location == "/connexion"
    assert "Votre mot de passe a été modifié" in text(client.get("/connexion"))

    assert "Adresse électronique ou mot de passe incorrect." in text(login(client, EMAIL))
    response = login(client, EMAIL, NEW_PASSWORD)
    assert response.status_code == 302 and response.location == "/compte"


def test_a_link_works_only_once(client: FlaskClient, smtp: SmtpServer, jeanne: str) -> None:
    _ask(client, EMAIL)
    path = _link_in(smtp.received[0])
    _choose(client, path, NEW_PASSWORD)
    for response in (client.get(path), _choose(client, path, "encore un autre essai")):
        assert response.status_code == 410
        assert "n'est plus valide" in text(response)
    assert "Demander un nouveau lien" in text(client.get(path))
    assert login(client, EMAIL, "encore un autre essai").status_code == 200  # refused


def test_links_expire(client: FlaskClient, engine: Engine, smtp: SmtpServer,
                      jeanne: str) -> None:
    _ask(client, EMAIL)
    path = _link_in(smtp.received[0])
    with engine.connect() as conn:
        created, expires = conn.execute(
            select(password_resets.c.created_at, password_resets.c.expires_at)).one()
    assert expires - created == timedelta(minutes=30)  # PASSWORD_RESET_TTL_MINUTES
    with write_transaction(engine) as conn:
        conn.execute(update(password_resets).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(path).status_code == 410
    assert _choose(client, path, NEW_PASSWORD).status_code == 410


def test_same_answer_and_no_mail_for_unknown_or_inactive_addresses(
        client: FlaskClient, engine: Engine, smtp: SmtpServer, jeanne: str) -> None:
    sync(engine, "regul-2", regulator("retiree@example.fr", active=False))
    known = _ask(client, EMAIL)
    unknown = _ask(client, "personne@example.fr")
    inactive = _ask(client, "retiree@example.fr")
    assert known == unknown == inactive
    assert [mail.rcpt_tos for mail in smtp.received] == [[EMAIL]]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(password_resets)).scalar_one() == 1


def test_password_rules_leave_the_link_usable(client: FlaskClient, smtp: SmtpServer,
                                              jeanne: str) -> None:
    _ask(client, EMAIL)
    path = _link_in(smtp.received[0])
    response = _choose(client, path, NEW_PASSWORD, "une autre phrase de passe")
    assert response.status_code == 400
    assert "Les deux mots de passe ne sont pas identiques." in text(response)
    response = _choose(client, path, "court")
    assert response.status_code == 400
    assert "au moins 12 caractères" in text(response)
    assert _choose(client, path, NEW_PASSWORD).status_code == 302


def test_reset_ends_every_open_session(app: Flask, engine: Engine, smtp: SmtpServer,
                                       jeanne: str) -> None:
    browser = app.test_client()
    login(browser, EMAIL)
    browser.post("/cgu", data={"csrf_token": csrf_from(browser, "/cgu")})
    assert browser.get("/compte").status_code == 200

    other = app.test_client()
    _ask(other, EMAIL)
    _choose(other, _link_in(smtp.received[0]), NEW_PASSWORD)

    assert browser.get("/compte").status_code == 302
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(user_sessions).where(
            user_sessions.c.revoked_at.is_(None))).scalar_one() == 0


def test_reset_form_needs_its_csrf_token(client: FlaskClient, smtp: SmtpServer,
                                         jeanne: str) -> None:
    client.get("/mot-de-passe-oublie")
    response = client.post("/mot-de-passe-oublie", data={"email": EMAIL})
    assert response.status_code == 400 and not smtp.received
    _ask(client, EMAIL)
    path = _link_in(smtp.received[0])
    response = client.post(path, data={"password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
    assert response.status_code == 400
    assert client.get(path).status_code == 200  # still unused
