"""`fhir-agenda user create | list | disable` through the command line of the app, and the
accounts they make used on the web pages, on both databases."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine, select

from app.storage.schema import user_accounts, user_sessions
from tests.support.accounts import login, regulator, sync, text
from tests.support.operators import OPERATOR_PASSWORD, choose_password, create_user


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.output


def test_create_gives_a_single_use_link_to_choose_the_password(app: Flask,
                                                                engine: Engine) -> None:
    number, path = create_user(app, "Claire.Dupont@Centre.fr", "staff", "--given", "Claire",
                               "--family", "Dupont")
    with engine.connect() as conn:
        row = conn.execute(select(user_accounts).where(user_accounts.c.pk == number)).one()
    assert (row.email, row.role, row.active, row.given, row.family) == (
        "claire.dupont@centre.fr", "staff", True, "Claire", "Dupont")
    assert row.terms_accepted_at is None  # accepted by the person at first login
    browser = app.test_client()
    assert login(browser, "claire.dupont@centre.fr", OPERATOR_PASSWORD).status_code == 200
    choose_password(browser, path)
    assert browser.get(path).status_code == 410  # used
    assert login(browser, "claire.dupont@centre.fr", OPERATOR_PASSWORD).status_code == 302
    assert browser.get("/compte").location.startswith("/cgu")  # logged in, terms to accept


def test_create_refuses_a_role_it_does_not_manage_an_address_in_use_and_bad_emails(
        app: Flask) -> None:
    code, output = run(app, "user", "create", "r@centre.fr", "--role", "regulator")
    assert code == 2 and "'regulator' is not one of 'administrator', 'staff'" in output
    create_user(app, "admin@centre.fr", "administrator")
    code, output = run(app, "user", "create", "ADMIN@centre.fr", "--role", "staff")
    assert code == 1 and "An active account already uses admin@centre.fr" in output
    code, output = run(app, "user", "create", "nobody", "--role", "staff")
    assert code == 1 and "'nobody' is not an email address" in output


def test_list_shows_the_centre_accounts_and_all_of_them_on_request(app: Flask,
                                                                   engine: Engine) -> None:
    admin, _ = create_user(app, "admin@centre.fr", "administrator", "--given", "Ada")
    staff, _ = create_user(app, "accueil@centre.fr", "staff")
    sync(engine, "reg-1", regulator("regul@sas.fr"))
    code, output = run(app, "user", "list")
    assert code == 0
    lines = output.splitlines()
    assert lines == [f"#{admin}\tadministrator\tactive\tadmin@centre.fr\tAda",
                     f"#{staff}\tstaff\tactive\taccueil@centre.fr\taccueil@centre.fr"]
    everyone = run(app, "user", "list", "--all")[1]
    assert "\tregulator\tactive\tregul@sas.fr\tJeanne MARTIN" in everyone


def test_disable_ends_sessions_and_links_and_leaves_regulators_to_sas(app: Flask,
                                                                      engine: Engine) -> None:
    number, path = create_user(app, "accueil@centre.fr", "staff")
    browser = app.test_client()
    choose_password(browser, path)
    assert login(browser, "accueil@centre.fr", OPERATOR_PASSWORD).status_code == 302
    _, second_link = create_user(app, "autre@centre.fr", "staff")
    code, output = run(app, "user", "disable", "accueil@centre.fr")
    assert (code, output.strip()) == (0, f"Account #{number} (accueil@centre.fr) disabled")
    with engine.connect() as conn:
        sessions = conn.execute(select(user_sessions.c.revoked_at).where(
            user_sessions.c.account_pk == number)).all()
    assert sessions and all(row.revoked_at is not None for row in sessions)
    assert browser.get("/compte").status_code == 302  # back to the login page
    assert "Adresse électronique ou mot de passe incorrect" in text(
        login(browser, "accueil@centre.fr", OPERATOR_PASSWORD))
    assert run(app, "user", "disable", "#999999")[1].strip() == "Error: No account #999999"
    sync(engine, "reg-1", regulator("regul@sas.fr"))
    code, output = run(app, "user", "disable", "regul@sas.fr")
    assert code == 1 and "SAS deactivates them" in output
    assert app.test_client().get(second_link).status_code == 200  # others untouched
