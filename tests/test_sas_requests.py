"""INT_R01 requests as SAS and its test kit really send them: what must be refused (400 with
an OperationOutcome naming the rule), what must be tolerated (and give the same slots), and
the SAS rules applied to any Slot search made with SAS's certificate. Both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from tests.factories import body
from tests.sas_data import IDNPS, MARTIN, NOEL, ROUX, agenda, load, sas_url
from tests.support.pki import Authority

SAS_ACCEPT = {"Accept": "application/json+fhir"}
STRICT = {**SAS_ACCEPT, "Prefer": "handling=strict"}
EXPECTED = ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]
Resource = dict[str, Any]


@pytest.fixture
def sas(client: Any) -> Any:
    load(client, agenda())
    return client


def _get(client: Any, url: str, headers: dict[str, str] | None = None) -> tuple[int, Resource]:
    response = client.get(url, headers=headers or SAS_ACCEPT)
    return response.status_code, body(response)


def _matches(answer: Resource) -> list[str]:
    return [e["resource"]["id"] for e in answer.get("entry", [])
            if e["search"]["mode"] == "match"]


def _refused(status: int, answer: Resource, *words: str) -> Resource:
    assert status == 400, answer
    assert answer["resourceType"] == "OperationOutcome"
    issue = answer["issue"][0]
    assert issue["severity"] == "error"
    assert all(word in issue["diagnostics"] for word in words), issue["diagnostics"]
    return issue


# -- refused ----------------------------------------------------------------------------------

def test_a_sas_shaped_request_without_identifiers_is_refused(sas: Any) -> None:
    url = sas_url(MARTIN).split("&schedule.actor")[0] + "&status=free"
    issue = _refused(*_get(sas, url), "professional identifier is required")
    assert issue["code"] == "required"
    assert issue["expression"] == ["schedule.actor:Practitioner.identifier"]


def test_a_sas_shaped_request_without_status_is_refused(sas: Any) -> None:
    issue = _refused(*_get(sas, sas_url(MARTIN, status=None)), "status=free is required")
    assert issue["expression"] == ["status"]


@pytest.mark.parametrize("side", ["low", "high"])
def test_a_sas_shaped_request_without_a_start_bound_is_refused(sas: Any, side: str) -> None:
    issue = _refused(*_get(sas, sas_url(MARTIN, **{side: None})), "bound of the search window")
    assert issue["expression"] == ["start"]


def test_strict_handling_refuses_an_unknown_parameter_on_the_sas_path(sas: Any) -> None:
    url = sas_url(MARTIN) + "&colour=blue"
    _refused(*_get(sas, url, STRICT), "colour")
    # Lenient (the default): ignored, same answer.
    status, answer = _get(sas, url)
    assert status == 200 and _matches(answer) == EXPECTED


def test_strict_handling_refuses_an_include_sas_does_not_answer(sas: Any) -> None:
    _refused(*_get(sas, sas_url(MARTIN) + "&_include=Slot:foo", STRICT), "Slot:foo")


def test_strict_handling_accepts_the_exact_sas_request(sas: Any) -> None:
    status, answer = _get(sas, sas_url(MARTIN) + "&_count=1000", STRICT)
    assert status == 200 and _matches(answer) == EXPECTED


def test_an_ordinary_slot_search_with_the_includes_stays_ordinary(sas: Any) -> None:
    # Another search parameter: not the SAS question, a plain FHIR search.
    status, answer = _get(sas, "/fhir/Slot?schedule=Schedule/sch-noel&_include=Slot:schedule"
                               "&_include:iterate=Schedule:actor")
    assert status == 200
    assert "meta" not in answer or "profile" not in answer.get("meta", {})
    assert _matches(answer) == ["noel-1"]


# -- tolerated --------------------------------------------------------------------------------

def _raw_url(identifiers: str, low: str, high: str, extra: str = "") -> str:
    return ("/fhir/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
            f"&start=ge{low}&start=le{high}"
            f"&schedule.actor:Practitioner.identifier={identifiers}&status=free{extra}")


@pytest.mark.parametrize(("identifiers", "low", "high", "extra"), [
    # A space after the comma, as in the SAS guide's own example.
    (f"{IDNPS}|{MARTIN}, {IDNPS}|{ROUX}", "2030-03-10T09:00:00+01:00",
     "2030-03-13T09:00:00+01:00", ""),
    # `+` left unencoded in the offset: it arrives as a space.
    (f"{IDNPS}|{MARTIN},{IDNPS}|{ROUX}", "2030-03-10T09:00:00+01:00",
     "2030-03-13T09:00:00+01:00", ""),
    # Encoded, with milliseconds, in UTC.
    (quote(f"{IDNPS}|{MARTIN},{IDNPS}|{ROUX}"), quote("2030-03-10T08:00:00.000+00:00"),
     quote("2030-03-13T08:00:00.000Z"), "&_count=1000"),
    # Without milliseconds, `|` encoded, `_count` below the maximum.
    (f"{IDNPS}%7C{MARTIN},{IDNPS}%7C{ROUX}", "2030-03-10T08:00:00Z",
     "2030-03-13T08:00:00Z", "&_count=200"),
    # Unprefixed national ids.
    (f"{IDNPS}|{MARTIN[1:]},{IDNPS}|{ROUX[1:]}", "2030-03-10T09:00:00",
     "2030-03-13T09:00:00", ""),
])
def test_tolerated_variants_give_the_same_slots(sas: Any, identifiers: str, low: str,
                                                high: str, extra: str) -> None:
    status, answer = _get(sas, _raw_url(identifiers, low, high, extra))
    assert status == 200, answer
    assert _matches(answer) == ["m-a-public", "roux-1", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]


def test_the_fr_core_rpps_system_is_accepted_in_the_request(sas: Any) -> None:
    url = _raw_url(f"https://rpps.esante.gouv.fr|{NOEL[1:]}", "2030-03-10T09:00:00",
                   "2030-03-13T09:00:00")
    status, answer = _get(sas, url)
    assert status == 200 and _matches(answer) == ["noel-1"]


# -- production: SAS's certificate means the SAS rules ------------------------------------------

PROXY = "10.1.2.3"
SAS_CN, SAS_OU = "sas-agregateur.sante.fr", "SAS"


@pytest.fixture(scope="module")
def sas_pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    ca = Authority("IGC-Sante test CA")
    bundle = ca.write(tmp_path_factory.mktemp("sas-ca") / "client-ca.pem")
    return bundle, ca.issue(SAS_CN, organisation="ANS", unit=SAS_OU).pem


@pytest.fixture
def as_sas(app: Flask, sas_pem: tuple[Path, bytes]) -> Any:
    state = app.extensions["agenda"]
    settings = Settings.from_env(
        database_url=state.settings.database_url, fhir_base_url=state.settings.fhir_base_url,
        secret_key="tests", security_profile="production", client_ca_bundle=str(sas_pem[0]),
        sas_allowed_cn=(SAS_CN,), sas_allowed_ou=(SAS_OU,), trusted_proxies=(PROXY,))
    load(app.test_client(), agenda())
    client = create_app(settings, engine=state.engine).test_client()
    client.environ_base.update({"REMOTE_ADDR": PROXY,
                                "HTTP_X_SSL_CLIENT_CERT": quote(sas_pem[1].decode(), safe="")})
    return client


def test_any_slot_search_with_the_sas_certificate_follows_the_sas_rules(as_sas: Any) -> None:
    # No iterated include, no identifiers: still the SAS question, so still its rules.
    _refused(*_get(as_sas, "/fhir/Slot?status=free"), "professional identifier is required")
    _refused(*_get(as_sas, "/fhir/Slot?schedule=Schedule/sch-noel&status=free"
                           "&start=ge2030-03-10T09:00:00&start=le2030-03-13T09:00:00"),
             "professional identifier is required")
    url = sas_url(MARTIN).replace("&_include:iterate=Schedule:actor", "")
    status, answer = _get(as_sas, url)
    assert status == 200, answer
    assert answer["meta"]["profile"] == ["http://sas.fr/fhir/StructureDefinition/BundleAgregateur"]
    assert _matches(answer) == EXPECTED
    assert json.dumps(answer).count('"resourceType": "Practitioner"') == 1


# -- the self link --------------------------------------------------------------------------------

KIT_QUERY = ("_include=Slot:schedule&_include:iterate=Schedule:actor"
             f"&schedule.actor:Practitioner.identifier={IDNPS}%7C{MARTIN}"
             "&start=ge2030-03-10T08:00:00.000%2B00:00&start=le2030-03-12T23:59:59.000%2B00:00"
             "&status=free")


def test_the_self_link_echoes_the_query_as_sent(sas: Any) -> None:
    # As the ANS kit sends it (alphabetical, `|` and `+` encoded) and compares it back.
    status, answer = _get(sas, "/fhir/Slot?" + KIT_QUERY)
    assert status == 200
    assert answer["link"] == [{"relation": "self",
                               "url": "http://localhost/fhir/Slot?" + KIT_QUERY}]


def test_a_raw_bar_in_the_query_is_encoded_in_the_self_link(sas: Any) -> None:
    status, answer = _get(sas, "/fhir/Slot?" + KIT_QUERY.replace("%7C", "|"))
    assert status == 200
    assert answer["link"][0]["url"] == "http://localhost/fhir/Slot?" + KIT_QUERY
