"""Accounts of the centre created as an operator would (`fhir-agenda user create`), and a
logged-in browser for them (terms accepted)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.support.accounts import csrf_from, login

OPERATOR_PASSWORD = "operator password 2026"
LINK = re.compile(r"https?://\S+/reinitialiser/(\S+)")


def create_user(app: Flask, email: str, role: str, *extra: str) -> tuple[int, str]:
    """Runs `user create`; returns the account number and its password link's path."""
    result = app.test_cli_runner().invoke(args=["user", "create", email, "--role", role,
                                                *extra])
    assert result.exit_code == 0, result.output
    number = int(re.search(r"Account #(\d+) created", result.output).group(1))  # type: ignore[union-attr]
    link = LINK.search(result.output)
    return number, f"/reinitialiser/{link.group(1)}" if link else ""


def choose_password(client: FlaskClient, path: str, password: str = OPERATOR_PASSWORD) -> None:
    token = csrf_from(client, path)
    response = client.post(path, data={"csrf_token": token, "password": password,
                                       "confirmation": password})
    assert response.status_code == 302, response.get_data(as_text=True)


def operator_client(app: Flask, email: str, role: str) -> FlaskClient:
    """A browser logged in as a new account of this role, its terms accepted."""
    client = app.test_client()
    _, path = create_user(app, email, role)
    choose_password(client, path)
    assert login(client, email, OPERATOR_PASSWORD).status_code == 302
    client.post("/cgu", data={"csrf_token": csrf_from(client, "/cgu")})
    return client
