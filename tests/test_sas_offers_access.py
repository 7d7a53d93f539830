"""The CPTS and SOS Médecins searches are SAS interactions: reserved to SAS's certificate in
the production profile, like the individual search, and any Schedule search SAS makes with
reverse chaining follows the SOS rules. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.auth.principal import CLIENT, Principal, sas_principal
from app.auth.scopes import Scopes
from tests.factories import FHIR_JSON, body
from tests.sas_data import MARTIN, agenda, load
from tests.sas_offers import IG, RENNES, cpts, cpts_url, sos, sos_url
from tests.support.principals import production_app

PRINCIPALS = {"sas": sas_principal("CN=sas.sante.fr,OU=SAS"),
              "everything": Principal(CLIENT, "everything", Scopes.parse("system/*.*"))}


@pytest.fixture
def secured(app: Flask, engine: Engine, database_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Flask:
    load(app.test_client(), agenda() + cpts() + sos())
    return production_app(engine, database_url, monkeypatch, PRINCIPALS)


def call(app: Flask, who: str | None, url: str) -> tuple[int, Any]:
    headers = {"Accept": FHIR_JSON}
    if who is not None:
        headers["Authorization"] = f"Bearer {who}"
    response = app.test_client().get(url, headers=headers)
    return response.status_code, body(response)


@pytest.mark.parametrize("url, profile", [
    (cpts_url(MARTIN), "sas-cpts-bundle-aggregator"),
    (sos_url(RENNES), "sas-sos-bundle-aggregator")], ids=["cpts", "sos"])
def test_the_offers_are_reserved_to_sas(secured: Flask, url: str, profile: str) -> None:
    status, answer = call(secured, "sas", url)
    assert status == 200 and answer["meta"]["profile"] == [IG + profile], answer
    assert answer["total"] > 0
    status, outcome = call(secured, "everything", url)
    assert status == 403 and "SAS" in outcome["issue"][0]["diagnostics"], outcome
    status, outcome = call(secured, None, url)
    assert status == 401 and outcome["issue"][0]["code"] == "login"


def test_a_schedule_search_sas_makes_with_reverse_chaining_follows_the_sos_rules(
        secured: Flask) -> None:
    status, outcome = call(secured, "sas", "/fhir/Schedule?_has:Slot:schedule:status=free")
    assert status == 400 and "SIRET is required" in outcome["issue"][0]["diagnostics"]
    # Other Schedule searches stay directory reads.
    status, answer = call(secured, "sas", "/fhir/Schedule?_id=sch-nord")
    assert status == 200 and [e["resource"]["id"] for e in answer["entry"]] == ["sch-nord"]
