"""Helpers for the account and web page tests: regulator resources, direct DB access."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from werkzeug.security import generate_password_hash

from app.accounts.service import sync_regulator
from app.db import write_transaction
from app.storage.schema import user_accounts

SAS_SOURCE = "urn:oid:1.2.250.1.213.3.6"
REGUL_PROFILE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                 "FrPractitionerRegul")
TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

Resource = dict[str, Any]


def regulator(email: str = "Jeanne.Martin@Example.fr", *, active: bool = True,
              family: str = "MARTIN", given: tuple[str, ...] = ("Jeanne",),
              national_id: str | None = None) -> Resource:
    identifier = ({"system": "urn:oid:1.2.250.1.71.4.2.1", "value": national_id,
                   "type": {"coding": [{"system": TYPE_SYSTEM, "code": "IDNPS"}]}}
                  if national_id else
                  {"system": SAS_SOURCE, "value": str(uuid.uuid4()),
                   "type": {"coding": [{"system": TYPE_SYSTEM, "code": "INTRN"}]}})
    return {"resourceType": "Practitioner",
            "meta": {"source": SAS_SOURCE, "profile": [REGUL_PROFILE]},
            "identifier": [identifier], "active": active,
            "name": [{"family": family, "given": list(given)}],
            "telecom": [{"system": "email", "value": email}]}


def sync(engine: Engine, practitioner_id: str, resource: Resource | None) -> None:
    with write_transaction(engine) as conn:
        sync_regulator(conn, practitioner_id, resource)


def account_row(engine: Engine, practitioner_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(user_accounts).where(
            user_accounts.c.practitioner_id == practitioner_id)).one()


def set_password(engine: Engine, practitioner_id: str, password: str = PASSWORD) -> None:
    """What the regulator would do through "mot de passe oublié" (tested on its own)."""
    with write_transaction(engine) as conn:
        conn.execute(update(user_accounts)
                     .where(user_accounts.c.practitioner_id == practitioner_id)
                     .values(password_hash=generate_password_hash(password)))


def csrf_from(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    token = csrf_from(client, "/connexion")
    return client.post("/connexion", data={"email": email, "password": password,
                                           "csrf_token": token}, **kwargs)


def text(response: Any) -> str:
    """The page as a reader sees it (entities such as &#39; decoded)."""
    return html.unescape(response.get_data(as_text=True))
