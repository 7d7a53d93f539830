"""`fhir-agenda oauth register-client --json`: the credentials as one JSON object, for
scripts (scripts/newman.sh registers the security collection's clients with it)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import Engine

from app import create_app
from app.config import Settings
from tests.conftest import TEST_BASE_URL
from tests.factories import FHIR_JSON

IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
RPPS = "10000000101"


@pytest.fixture
def secured(app: Flask, engine: Engine, database_url: str, tmp_path: Path) -> Flask:
    """The production profile on a database holding one practitioner (loaded through the
    development-profile `app`, which also empties the tables)."""
    created = app.test_client().put(
        "/fhir/Practitioner/dupont", headers={"Content-Type": FHIR_JSON},
        data=json.dumps({"resourceType": "Practitioner", "id": "dupont", "active": True,
                         "identifier": [{"system": IDNPS, "value": RPPS}],
                         "name": [{"family": "Dupont"}]}))
    assert created.status_code in (200, 201), created.get_data(as_text=True)
    key = tmp_path / "signing.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    production = create_app(Settings.from_env(
        security_profile="production", database_url=database_url,
        fhir_base_url=TEST_BASE_URL, oauth_signing_key=str(key)), engine=engine)
    production.config["TESTING"] = True
    return production


def register_json(flask_app: Flask, *args: str) -> dict[str, Any]:
    result = flask_app.test_cli_runner().invoke(
        args=["oauth", "register-client", "--json", *args])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # nothing but the JSON object on stdout
    assert isinstance(document, dict)
    return document


def test_json_output_holds_working_credentials(secured: Flask) -> None:
    document = register_json(secured, "--name", "Agenda Dupont",
                             "--scope", "system/Slot.rs system/Appointment.cruds",
                             "--practitioner", RPPS)
    assert set(document) == {"client_id", "client_secret", "name", "scope", "practitioners",
                             "organizations", "token_endpoint"}
    assert document["name"] == "Agenda Dupont"
    assert document["scope"] == "system/Slot.rs system/Appointment.cruds"
    assert document["practitioners"] == ["dupont"]  # the RPPS resolved to the logical id
    assert document["organizations"] == []
    assert document["token_endpoint"] == "http://localhost/oauth/token"

    credentials = f"{document['client_id']}:{document['client_secret']}".encode()
    answer = secured.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": "system/Slot.rs"},
        headers={"Authorization": "Basic " + base64.b64encode(credentials).decode()})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["token_type"].lower() == "bearer"
    assert answer.get_json()["scope"] == "system/Slot.rs"

    listed = secured.test_cli_runner().invoke(args=["oauth", "list"]).output
    assert document["client_id"] in listed and "Practitioner/dupont" in listed
    assert document["client_secret"] not in listed


def test_json_output_of_an_unrestricted_client_and_text_output_unchanged(
        secured: Flask) -> None:
    document = register_json(secured, "--name", "Agenda X", "--scope", "system/*.rs")
    assert document["practitioners"] == [] and document["organizations"] == []
    text = secured.test_cli_runner().invoke(
        args=["oauth", "register-client", "--name", "Agenda Y", "--scope", "system/*.rs"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("client_id:") and "Keep the secret now" in text.output


def test_json_refusals_exit_non_zero_without_json(secured: Flask) -> None:
    result = secured.test_cli_runner().invoke(
        args=["oauth", "register-client", "--json", "--name", "X", "--scope", "system/Slot.rs",
              "--practitioner", "10000000999"])
    assert result.exit_code != 0
    assert "is not known" in result.output
    assert not result.stdout.lstrip().startswith("{")
