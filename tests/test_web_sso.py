"""Single sign-on ("flux v2") against a real OpenID Connect provider standing in for Pro
Santé Connect (oidc-provider, tests/support/dev_idp.py), on both databases: the booking
link's redirect (PKCE S256, state, nonce, scopes, acr_values), the identity mapped to the
regulator account SAS created, refusals (unknown, deactivated, a tampered answer) as French
pages with an AuditEvent and no session, the origin as the only source of regulator
rights, and the logout at the provider."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from app import create_app
from app.config import Settings
from app.storage.maintenance import truncate_all
from tests.support.accounts import PASSWORD, account_row, set_password
from tests.support.booking_pages import (
    REGULATOR_RPPS,
    booking_link,
    csrf,
    load_agenda,
    path_of,
    put_regulator,
    regulator_resource,
    text,
)
from tests.support.dev_idp import CLIENT_ID, DevIdp, psc_identity

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

SITE = "http://localhost"
UNKNOWN_RPPS, DEACTIVATED_RPPS = "810000000026", "810001111118"
TECHNICAL_ID = "7a1f7b53-52f9-4b8a-9a4c-5f3f0e6f1c11"
ACCOUNTS = {
    "regulateur": psc_identity(REGULATOR_RPPS),
    "inconnu": psc_identity(UNKNOWN_RPPS, family="INCONNU"),
    "desactive": psc_identity(DEACTIVATED_RPPS, family="DESACTIVE"),
    # A broker's identity naming the person by SAS's technical id only.
    "technique": {"sub": "f:test:technique", "sas_id": TECHNICAL_ID,
                  "given_name": "Alex", "family_name": "TECHNIQUE"},
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdp]:
    with DevIdp(ACCOUNTS, SITE, tmp_path_factory.mktemp("idp") / "idp.log") as provider:
        yield provider


def _app(engine: Engine, database_url: str, idp: DevIdp, **overrides: Any) -> Flask:
    flask_app = create_app(Settings.from_env(
        database_url=database_url, fhir_base_url=f"{SITE}/fhir", public_web_url=SITE,
        secret_key="tests", **{**idp.settings(), **overrides}), engine=engine)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def app(engine: Engine, database_url: str, idp: DevIdp) -> Flask:
    truncate_all(engine)
    return _app(engine, database_url, idp)


@pytest.fixture
def regulator(client: FlaskClient) -> str:
    """The doctor's agenda, and the regulator account SAS created (INT_R02)."""
    load_agenda(client)
    return put_regulator(client)


@pytest.fixture
def browser() -> requests.Session:
    """The regulator's browser as the provider sees it (its session cookie there)."""
    return requests.Session()


def sso(client: FlaskClient, idp: DevIdp, browser: requests.Session, link: str,
        login: str | None) -> Any:
    """Open `link` as SAS does, through the provider (login page when it asks), back to us."""
    response = client.get(link)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.startswith(f"{idp.issuer}/auth?")
    return client.get(path_of(idp.sign_in(browser, response.location, login)))


def accept_terms(client: FlaskClient, response: Any) -> Any:
    assert response.status_code == 302 and response.location.startswith("/cgu?next=")
    terms = response.location
    token = csrf(client.get(terms).get_data(as_text=True))
    return client.post(terms, data={"csrf_token": token})


def audit(client: FlaskClient, query: str, *, sign_ins: bool = True) -> list[dict[str, Any]]:
    """AuditEvents matching `query`: by default only sign-ins and sign-outs."""
    if sign_ins:
        query += "&type=110114"
    bundle = client.get(f"/fhir/AuditEvent?{query}").get_json()
    return [e["resource"] for e in bundle.get("entry", [])]


def test_the_booking_link_redirects_to_the_provider_as_pro_sante_connect_wants(
        client: FlaskClient, idp: DevIdp, regulator: str) -> None:
    response = client.get(booking_link("cabinet-1"))
    assert response.status_code == 302  # one HTTP redirect, straight to the provider
    authorize = urlsplit(response.location)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{idp.issuer}/auth"
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{SITE}/sso/retour"
    assert query["scope"] == "openid scope_all" and query["acr_values"] == "eidas1"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    # The verifier stays with us (in the session), the provider only sees its S256 hash.
    with client.session_transaction() as session:
        kept = session[f"_state_sso_{query['state']}"]["data"]
    assert kept["nonce"] == query["nonce"] and kept["redirect_uri"] == f"{SITE}/sso/retour"
    assert _pkce_pair_is_s256(kept["code_verifier"], query["code_challenge"])
    # A new state and nonce, and a new PKCE challenge, for every attempt.
    again = {k: v[0] for k, v in parse_qs(urlsplit(client.get(
        booking_link("cabinet-1")).location).query).items()}
    assert {again[k] != query[k] for k in ("state", "nonce", "code_challenge")} == {True}


def test_sso_from_sas_opens_a_regulator_session_after_the_terms(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str) -> None:
    link = booking_link("cabinet-1")
    response = sso(client, idp, browser, link, "regulateur")
    assert response.status_code == 302 and response.location == link
    page = accept_terms(client, client.get(link))
    assert page.location == link
    agenda = client.get(link)
    assert agenda.status_code == 200
    assert "Prendre rendez-vous avec Dr Hélène Dupont" in text(agenda.get_data(as_text=True))
    account = text(client.get("/compte").get_data(as_text=True))
    assert "Droits de régulateur actifs" in account
    assert "prendre rendez-vous pour un patient" in account
    (event,) = audit(client, "entity=Practitioner/" + regulator + "&outcome=0")
    assert event["type"]["code"] == "110114" and event["subtype"][0]["code"] == "110122"
    assert "sso" in event["outcomeDesc"] and "origin=sas" in event["outcomeDesc"]
    assert f"Practitioner/{regulator}" in event["agent"][0]["name"]


def test_already_signed_in_at_the_provider_there_is_no_login_step(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str,
        app: Flask) -> None:
    accept_terms(client, client.get(sso(client, idp, browser, booking_link("cabinet-1"),
                                        "regulateur").location))
    # Another of our browser sessions (a new tab after closing ours), same provider session.
    other = app.test_client()
    response = sso(other, idp, browser, booking_link("video-1"), login=None)
    assert response.location == booking_link("video-1")
    assert other.get(booking_link("video-1")).status_code == 200


def test_an_unknown_identity_gets_a_french_page_an_audit_event_and_no_session(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str) -> None:
    response = sso(client, idp, browser, booking_link("cabinet-1"), "inconnu")
    assert response.status_code == 403
    shown = text(response.get_data(as_text=True))
    assert "Accès refusé" in shown and "aucun compte régulateur" in shown
    assert "connexion par mot de passe" in shown
    assert client.get("/compte").status_code == 302  # no session
    assert client.get(booking_link("cabinet-1", origin=None)).location.startswith(
        "/connexion")
    (event,) = audit(client, "outcome=4")
    assert event["outcomeDesc"] == "unknown identity"
    assert f"1.2.250.1.71.4.2.1|{UNKNOWN_RPPS}" in event["agent"][0]["name"]


def test_a_deactivated_regulator_is_refused(client: FlaskClient, idp: DevIdp,
                                            browser: requests.Session, regulator: str) -> None:
    deactivated = put_regulator(client, DEACTIVATED_RPPS, family="DESACTIVE", active=False)
    response = sso(client, idp, browser, booking_link("cabinet-1"), "desactive")
    assert response.status_code == 403
    shown = text(response.get_data(as_text=True))
    assert "Votre compte régulateur a été désactivé" in shown
    assert "connexion par mot de passe" not in shown  # the password account is closed too
    assert client.get("/compte").status_code == 302
    (event,) = audit(client, "outcome=4")
    assert event["outcomeDesc"] == "deactivated regulator account"
    assert event["entity"][0]["what"]["reference"] == f"Practitioner/{deactivated}"


def test_without_origin_an_sso_session_has_no_regulator_right(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str) -> None:
    link = booking_link("cabinet-1", origin=None)
    response = client.get(link)
    assert response.location.startswith("/connexion?next=")  # a login page, not the provider
    login_page = text(client.get(response.location).get_data(as_text=True))
    assert "Se connecter avec Pro Santé Connect (test)" in login_page
    response = client.get(f"/sso/connexion?next={quote(link)}")
    back = idp.sign_in(browser, response.location, "regulateur")
    response = accept_terms(client, client.get(client.get(path_of(back)).location))
    response = client.get(link)
    assert response.status_code == 403
    assert "Ouvrez ce créneau depuis le SAS" in text(response.get_data(as_text=True))
    assert "inactifs" in text(client.get("/compte").get_data(as_text=True))
    assert any("no booking right" in e.get("outcomeDesc", "")
               for e in audit(client, "outcome=4", sign_ins=False))


def test_a_tampered_answer_is_refused_without_a_session(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str) -> None:
    response = client.get(booking_link("cabinet-1"))
    back = idp.sign_in(browser, response.location, "regulateur")
    forged = back.replace("state=", "state=x")  # not the state we sent: CSRF at the callback
    response = client.get(path_of(forged))
    assert response.status_code == 400
    assert "La connexion n'a pas abouti" in text(response.get_data(as_text=True))
    assert client.get("/compte").status_code == 302
    # The genuine answer cannot be replayed either: its state was used up.
    assert client.get(path_of(back)).status_code == 400
    assert len(audit(client, "outcome=4")) == 2


def test_an_id_token_not_signed_by_the_provider_is_refused(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str,
        app: Flask) -> None:
    from joserfc.jwk import RSAKey

    from app.auth.sso import sso_client

    response = client.get(booking_link("cabinet-1"))
    back = idp.sign_in(browser, response.location, "regulateur")
    with app.app_context():  # the provider's keys as we hold them, replaced by another key
        kid = sso_client().fetch_jwk_set()["keys"][0]["kid"]
        forged = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        sso_client().server_metadata["jwks"] = {"keys": [forged.as_dict(private=False)]}
    try:
        response = client.get(path_of(back))
    finally:
        with app.app_context():
            sso_client().server_metadata.pop("jwks")
    assert response.status_code == 400
    assert client.get("/compte").status_code == 302
    (event,) = audit(client, "outcome=4")
    assert "provider answer refused" in event["outcomeDesc"]


def test_an_id_token_below_the_level_of_assurance_asked_is_refused(
        engine: Engine, database_url: str, idp: DevIdp, browser: requests.Session) -> None:
    truncate_all(engine)
    client = _app(engine, database_url, idp, oidc_acr_values="eidas2").test_client()
    load_agenda(client)
    put_regulator(client)
    response = sso(client, idp, browser, booking_link("cabinet-1"), "regulateur")
    assert response.status_code == 400  # the provider signed `acr: eidas1` in
    assert client.get("/compte").status_code == 302


def test_the_password_account_keeps_the_origin_of_the_booking_link(
        client: FlaskClient, engine: Engine, regulator: str) -> None:
    set_password(engine, regulator)
    link = booking_link("cabinet-1")
    login = f"/connexion?next={quote(link)}"
    token = csrf(client.get(login).get_data(as_text=True))
    response = client.post(login, data={"email": account_row(engine, regulator).email,
                                        "password": PASSWORD, "csrf_token": token})
    assert response.location == link
    accept_terms(client, client.get(link))
    assert client.get(link).status_code == 200
    (event,) = audit(client, "outcome=0&entity=Practitioner/" + regulator)
    assert event["outcomeDesc"] == "password, origin=sas"


def test_the_provider_national_id_matches_an_account_stored_unprefixed(
        client: FlaskClient, idp: DevIdp, browser: requests.Session) -> None:
    load_agenda(client)
    put_regulator(client, REGULATOR_RPPS[1:])  # SAS sent the bare RPPS
    response = sso(client, idp, browser, booking_link("cabinet-1"), "regulateur")
    assert response.location == booking_link("cabinet-1")


def test_the_sas_technical_id_names_the_account_when_configured(
        engine: Engine, database_url: str, idp: DevIdp, browser: requests.Session) -> None:
    truncate_all(engine)
    app = _app(engine, database_url, idp, oidc_technical_id_claim="sas_id")
    client = app.test_client()
    load_agenda(client)
    technical = regulator_resource()
    technical["identifier"] = [{"type": {"coding": [{
        "system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "INTRN"}]},
        "system": "urn:oid:1.2.250.1.213.3.6", "value": TECHNICAL_ID}]
    assert client.put(f"/fhir/Practitioner?identifier=urn:oid:1.2.250.1.213.3.6|{TECHNICAL_ID}",
                      json=technical).status_code == 201
    response = sso(client, idp, browser, booking_link("cabinet-1"), "technique")
    assert response.location == booking_link("cabinet-1")


def test_logout_ends_the_session_here_and_at_the_provider(
        client: FlaskClient, idp: DevIdp, browser: requests.Session, regulator: str) -> None:
    accept_terms(client, client.get(sso(client, idp, browser, booking_link("cabinet-1"),
                                        "regulateur").location))
    token = csrf(client.get("/deconnexion").get_data(as_text=True))
    response = client.post("/deconnexion", data={"csrf_token": token})
    end_session = urlsplit(response.location)
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == \
        f"{idp.issuer}/session/end"
    query = {k: v[0] for k, v in parse_qs(end_session.query).items()}
    assert query["post_logout_redirect_uri"] == f"{SITE}/deconnexion/terminee"
    assert query["id_token_hint"].count(".") == 2  # the ID token the provider gave us
    assert client.get("/compte").status_code == 302
    (event,) = audit(client, "entity=Practitioner/" + regulator + "&outcome=0&_sort=-date"
                     "&_count=1")
    assert event["subtype"][0]["code"] == "110123"  # Logout
    # The provider signs the browser out and sends it back to our page.
    page = browser.get(response.location)
    form = page.text[page.text.index("<form"):]
    fields = dict(pair.split('" value="') for pair in
                  (f.split('name="', 1)[1].rsplit('"', 1)[0] for f in
                   form.split("<input")[1:]) if '" value="' in pair)
    back = browser.post(urlsplit(response.location)._replace(
        path="/session/end/confirm", query="").geturl(), data={**fields, "logout": "yes"},
        allow_redirects=False)
    assert back.headers["Location"].startswith(f"{SITE}/deconnexion/terminee")
    assert "Vous êtes déconnecté" in text(client.get(path_of(back.headers["Location"]))
                                          .get_data(as_text=True))
    # Signed out there too: the next SAS link asks for the login again.
    with pytest.raises(AssertionError, match="no login form"):
        sso(client, idp, browser, booking_link("cabinet-1"), login=None)


def _pkce_pair_is_s256(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


def test_misconfigured_sso_stops_the_start_up(engine: Engine, database_url: str,
                                              idp: DevIdp) -> None:
    from app.auth.sso import SsoMisconfigured

    with pytest.raises(SsoMisconfigured, match="OIDC_CLIENT_SECRET"):
        _app(engine, database_url, idp, oidc_client_secret=None)
    with pytest.raises(SsoMisconfigured, match="OIDC_PRIVATE_KEY"):
        _app(engine, database_url, idp, oidc_client_auth_method="private_key_jwt")
    with pytest.raises(ValueError, match="OIDC_CLIENT_AUTH_METHOD"):
        Settings.from_env(oidc_client_auth_method="none")
