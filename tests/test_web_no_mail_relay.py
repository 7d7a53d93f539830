"""A forgotten password when no mail relay is configured (SMTP_HOST unset), on both
databases: the page says no mail can be sent and never pretends one was; in the development
profile the mail (with its working link) is written to the log instead."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from app.accounts.mailer import LogMailer, SmtpMailer, mailer_for
from app.config import Settings
from app.state import state_of
from app.storage.schema import password_resets
from tests.support.accounts import account_row, csrf_from, regulator, sync
from tests.support.booking_pages import text

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

SENT = "un message contenant un lien de réinitialisation vient d'y être envoyé"


def _with(app: Flask, **changes: object) -> Flask:
    state = state_of(app)
    state.settings = dataclasses.replace(state.settings, **changes)  # type: ignore[arg-type]
    return app


def _resets(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(password_resets)).scalar_one())


def _ask(client: FlaskClient, email: str) -> tuple[int, str]:
    # The login page's token: without a relay, the reset page shows no form at all.
    response = client.post("/mot-de-passe-oublie", data={
        "email": email, "csrf_token": csrf_from(client, "/connexion")})
    return response.status_code, text(response.get_data(as_text=True))


def test_the_mailer_follows_the_settings() -> None:
    assert mailer_for(Settings(smtp_host="smtp.example.fr")) == SmtpMailer(
        host="smtp.example.fr")
    assert isinstance(mailer_for(Settings(security_profile="development")), LogMailer)
    assert mailer_for(Settings()) is None  # production without a relay: nothing to send with


def test_production_without_a_relay_says_so_and_sends_nothing(
        app: Flask, client: FlaskClient, engine: Engine) -> None:
    _with(app, smtp_host=None, security_profile="production")
    sync(engine, "regul-1", regulator())
    page = text(client.get("/mot-de-passe-oublie").get_data(as_text=True))
    assert "Aucun serveur de messagerie n'est configuré" in page
    status, page = _ask(client, account_row(engine, "regul-1").email)
    assert status == 503
    assert "Aucun serveur de messagerie n'est configuré" in page and SENT not in page
    assert _resets(engine) == 0  # no link exists that nobody could receive


def test_development_without_a_relay_logs_the_mail_and_says_so(
        app: Flask, client: FlaskClient, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    _with(app, smtp_host=None, security_profile="development",
          public_web_url="http://localhost")
    sync(engine, "regul-1", regulator())
    with caplog.at_level(logging.WARNING, logger="app.accounts.mailer"):
        status, page = _ask(client, account_row(engine, "regul-1").email)
    assert status == 200
    assert "aucun message n'a été envoyé" in page and "journal du serveur" in page
    assert SENT not in page
    (logged,) = [r.getMessage() for r in caplog.records if "Mail NOT sent" in r.getMessage()]
    link = re.search(r"http://localhost(/reinitialiser/[A-Za-z0-9_-]+)", logged)
    assert link and "Réinitialisation de votre mot de passe" in logged
    assert client.get(link.group(1)).status_code == 200  # the logged link works
