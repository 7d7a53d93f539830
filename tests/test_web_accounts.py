"""Account pages through the Flask test client, on both databases: login, logout, terms of
use forced at first login, immediate effect of a SAS deactivation, CSRF protection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import Settings
from app.storage.schema import user_sessions
from tests.support.accounts import (
    CSRF_RE,
    account_row,
    csrf_from,
    login,
    regulator,
    set_password,
    sync,
    text,
)

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

EMAIL = "jeanne.martin@example.fr"
BAD_LOGIN = "Adresse électronique ou mot de passe incorrect."


@pytest.fixture
def jeanne(app: Flask, engine: Engine) -> str:
    """An active regulator account that knows its password; returns its Practitioner id."""
    sync(engine, "regul-1", regulator())
    set_password(engine, "regul-1")
    return "regul-1"


def _sessions(engine: Engine, *, live: bool) -> int:
    condition = (user_sessions.c.revoked_at.is_(None) if live
                 else user_sessions.c.revoked_at.is_not(None))
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(user_sessions)
                                .where(condition)).scalar_one())


def _accept_terms(client: FlaskClient) -> None:
    token = csrf_from(client, "/cgu")
    response = client.post("/cgu", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/compte"


def _logged_in(client: FlaskClient) -> None:
    assert login(client, EMAIL).status_code == 302
    _accept_terms(client)


def test_login_page_is_french_and_hardened(client: FlaskClient) -> None:
    response = client.get("/connexion")
    page = text(response)
    assert response.status_code == 200
    assert '<html lang="fr">' in page
    for label in ("Connexion", "Adresse électronique", "Mot de passe", "Se connecter",
                  "Mot de passe oublié ?"):
        assert label in page
    assert CSRF_RE.search(page)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/web/static/style.css").status_code == 200


def test_first_login_requires_the_terms_of_use(client: FlaskClient, engine: Engine,
                                               jeanne: str) -> None:
    response = login(client, "  Jeanne.Martin@EXAMPLE.fr ")
    assert response.status_code == 302 and response.location == "/compte"
    # Nothing else is reachable before acceptance.
    response = client.get("/compte")
    assert response.status_code == 302 and response.location.startswith("/cgu")
    page = text(client.get("/cgu"))
    assert "Conditions générales d'utilisation" in page
    assert "vous devez accepter" in page
    assert "J'accepte les conditions générales d'utilisation" in page
    assert account_row(engine, jeanne).terms_accepted_at is None

    _accept_terms(client)

    assert account_row(engine, jeanne).terms_accepted_at is not None
    page = text(client.get("/compte"))
    assert "Mon compte" in page and "Jeanne MARTIN" in page and EMAIL in page
    # A regulator who logged in with a password, not through SAS, has no rights here.
    assert "<dt>Droits de cette session</dt> <dd>aucun</dd>" in " ".join(page.split())
    assert "Régulateur" in page
    # Logged in through our own page, not from SAS: no regulator rights in this session.
    assert "inactifs" in page and "plateforme numérique SAS" in page
    assert "J'accepte" not in text(client.get("/cgu"))


def test_later_logins_go_straight_to_the_account(app: Flask, engine: Engine,
                                                 jeanne: str) -> None:
    _logged_in(app.test_client())
    client = app.test_client()
    response = login(client, EMAIL, follow_redirects=True)
    assert "Mon compte" in text(response)
    assert _sessions(engine, live=True) == 2


def test_wrong_password_unknown_and_inactive_accounts_get_one_neutral_message(
        app: Flask, client: FlaskClient, engine: Engine, jeanne: str) -> None:
    sync(engine, "regul-2", regulator("retiree@example.fr", active=False))
    set_password(engine, "regul-2")
    for email, password in ((EMAIL, "mauvais mot de passe"),
                            ("inconnu@example.fr", "correct horse battery"),
                            ("retiree@example.fr", "correct horse battery")):
        response = login(client, email, password)
        assert response.status_code == 200
        assert BAD_LOGIN in text(response)
    assert _sessions(engine, live=True) == 0
    assert client.get("/compte").location == "/connexion?next=/compte"


def test_logout_revokes_the_session(client: FlaskClient, engine: Engine, jeanne: str) -> None:
    _logged_in(client)
    assert "Voulez-vous fermer votre session ?" in text(client.get("/deconnexion"))
    assert "Mon compte" in text(client.get("/compte"))  # a GET does not log out
    response = client.post("/deconnexion", data={"csrf_token": csrf_from(client, "/deconnexion")},
                           follow_redirects=True)
    assert "Vous êtes déconnecté." in text(response)
    assert _sessions(engine, live=True) == 0 and _sessions(engine, live=False) == 1
    assert client.get("/compte").status_code == 302


def test_deactivation_by_sas_ends_open_sessions_at_once(client: FlaskClient, engine: Engine,
                                                        jeanne: str) -> None:
    _logged_in(client)
    assert client.get("/compte").status_code == 200

    sync(engine, jeanne, regulator(active=False))

    response = client.get("/compte")
    assert response.status_code == 302 and response.location == "/connexion?next=/compte"
    assert "Votre session a pris fin" in text(client.get(response.location))
    assert _sessions(engine, live=True) == 0
    assert BAD_LOGIN in text(login(client, EMAIL))

    sync(engine, jeanne, regulator(active=True))  # habilitation restored

    response = login(client, EMAIL, follow_redirects=True)
    assert "Mon compte" in text(response)  # terms were already accepted


def test_forms_without_a_valid_csrf_token_are_refused(client: FlaskClient, engine: Engine,
                                                      jeanne: str) -> None:
    client.get("/connexion")
    for data in ({"email": EMAIL, "password": "correct horse battery"},
                 {"email": EMAIL, "password": "correct horse battery", "csrf_token": "forged"}):
        response = client.post("/connexion", data=data)
        assert response.status_code == 400
        assert "Le formulaire a expiré ou n'est pas valide." in text(response)
    assert _sessions(engine, live=True) == 0
    # A token taken from another browser does not work either.
    other = client.application.test_client()
    response = client.post("/connexion", data={"email": EMAIL, "password": "x",
                                               "csrf_token": csrf_from(other, "/connexion")})
    assert response.status_code == 400

    assert login(client, EMAIL).status_code == 302
    assert client.post("/cgu", data={}).status_code == 400
    assert account_row(engine, jeanne).terms_accepted_at is None
    assert client.post("/deconnexion", data={}).status_code == 400
    assert _sessions(engine, live=True) == 1


def test_login_renews_the_csrf_token(client: FlaskClient, jeanne: str) -> None:
    before = csrf_from(client, "/connexion")
    login(client, EMAIL)
    assert csrf_from(client, "/cgu") != before


def test_next_only_follows_local_paths(client: FlaskClient, jeanne: str) -> None:
    _logged_in(client)
    client.post("/deconnexion", data={"csrf_token": csrf_from(client, "/deconnexion")})
    token = csrf_from(client, "/connexion")
    for target, expected in (("/compte?x=1", "/compte?x=1"), ("//evil.example/", "/compte"),
                             ("https://evil.example/", "/compte")):
        response = client.post("/connexion", query_string={"next": target},
                               data={"email": EMAIL, "password": "correct horse battery",
                                     "csrf_token": token})
        assert response.location == expected
        client.post("/deconnexion", data={"csrf_token": csrf_from(client, "/deconnexion")})
        token = csrf_from(client, "/connexion")


def test_secret_key_comes_from_settings_or_is_generated_loudly(
        engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    configured = create_app(Settings.from_env(database_url=database_url,
                                              secret_key="s" * 40), engine=engine)
    assert configured.secret_key == "s" * 40
    with caplog.at_level(logging.WARNING, logger="app.web.security"):
        generated = create_app(Settings.from_env(database_url=database_url, secret_key=None),
                               engine=engine)
    assert generated.secret_key and len(str(generated.secret_key)) >= 32
    assert "SECRET_KEY is not set" in caplog.text
    https = create_app(Settings.from_env(database_url=database_url,
                                         public_web_url="https://agenda.example"),
                       engine=engine)
    assert https.config["SESSION_COOKIE_SECURE"] is True
