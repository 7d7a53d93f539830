"""GET /fhir/metadata: the CapabilityStatement, checked against the search registry and against
what the server actually answers.

Spec: http://hl7.org/fhir/R4/capabilitystatement.html, http.html#capabilities
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.search.registry import READ_ONLY_TYPES, SUPPORTED_TYPES, params_for
from tests.factories import (
    FHIR_JSON,
    assert_outcome,
    body,
    bundle,
    create,
    minimal,
    patient,
    practitioner,
    schedule,
    send,
)

SEARCH_PARAM_TYPES = {"number", "date", "string", "token", "reference", "composite",
                      "quantity", "uri", "special"}
TYPE_INTERACTIONS = {"read", "vread", "update", "patch", "delete", "history-instance",
                     "history-type", "create", "search-type"}
# One value per search parameter type, valid for any parameter of that type.
SAMPLE_VALUES = {"token": "x", "string": "x", "date": "ge2026-01-01", "reference": "x",
                 "uri": "http://example.org/x", "number": "1", "special": "x"}


@pytest.fixture
def capability(client) -> dict[str, Any]:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.mimetype == FHIR_JSON
    return body(response)


def _rest(capability: dict[str, Any]) -> dict[str, Any]:
    servers = [r for r in capability["rest"] if r["mode"] == "server"]
    assert len(servers) == 1
    return servers[0]


def _resources(capability: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resources = _rest(capability)["resource"]
    by_type = {r["type"]: r for r in resources}
    assert len(by_type) == len(resources), "a type is listed twice"
    return by_type


def test_capability_statement_header(capability):
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    assert capability["status"] == "active"
    assert capability["kind"] == "instance"
    assert capability["date"]
    assert "json" in capability["format"] or "application/fhir+json" in capability["format"]
    assert capability["implementation"]["url"] == "http://localhost/fhir"


def test_capability_statement_is_valid_fhir(capability):
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class("CapabilityStatement").model_validate(capability)


def test_every_supported_type_is_listed(capability):
    resources = _resources(capability)
    assert set(resources) == {*SUPPORTED_TYPES, "Bundle"}
    # Bundle is not stored (transactions go to the base URL), only validated: SAS answers.
    assert resources["Bundle"].get("interaction", []) == []
    assert [o["name"] for o in resources["Bundle"]["operation"]] == ["validate"]


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_type_interactions_and_flags(capability, resource_type):
    resource = _resources(capability)[resource_type]
    codes = [i["code"] for i in resource["interaction"]]
    assert len(codes) == len(set(codes))
    assert set(codes) <= TYPE_INTERACTIONS
    reads = {"read", "vread", "history-instance", "history-type", "search-type"}
    writes = {"update", "delete", "create"}
    assert resource["versioning"] in {"versioned", "versioned-update"}
    assert resource["readHistory"] is True
    assert resource["profile"] == f"http://hl7.org/fhir/StructureDefinition/{resource_type}"
    if resource_type in READ_ONLY_TYPES:
        # Written by the server only (the audit trail): no write is advertised.
        assert set(codes) == reads
        assert resource["updateCreate"] is False
        assert resource["conditionalCreate"] is False
        assert resource["conditionalUpdate"] is False
        assert resource["conditionalDelete"] == "not-supported"
        return
    assert set(codes) >= reads | writes
    assert resource["updateCreate"] is True
    assert resource["conditionalCreate"] is True
    assert resource["conditionalUpdate"] is True
    assert resource["conditionalDelete"] in {"single", "multiple"}


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_search_params_match_the_registry(capability, resource_type):
    advertised = _resources(capability)[resource_type]["searchParam"]
    registry = params_for(resource_type)
    names = [p["name"] for p in advertised]
    assert len(names) == len(set(names))
    assert set(names) == set(registry)
    for param in advertised:
        assert param["type"] in SEARCH_PARAM_TYPES, param
        expected = registry[param["name"]].type
        if expected != "special":
            assert param["type"] == expected, param
        # R4's own definitions, or the GAP guide's for the parameters it defines.
        assert param["definition"].startswith((
            "http://hl7.org/fhir/SearchParameter/",
            "https://interop.esante.gouv.fr/ig/fhir/gap/SearchParameter/")), param


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_search_includes_are_reference_params(capability, resource_type):
    resource = _resources(capability)[resource_type]
    references = {name for name, p in params_for(resource_type).items()
                  if p.type == "reference"}
    assert {i.split(":", 1)[1] for i in resource.get("searchInclude", [])} == references
    for rev in resource.get("searchRevInclude", []):
        source, name = rev.split(":", 1)
        assert source in SUPPORTED_TYPES
        assert params_for(source)[name].type == "reference"


def test_system_interactions(capability):
    codes = {i["code"] for i in _rest(capability)["interaction"]}
    assert {"transaction", "batch"} <= codes
    assert codes <= {"transaction", "batch", "search-system", "history-system"}


# -- what is advertised answers ---------------------------------------------------------------

def _prerequisites(client) -> dict[str, str]:
    doctor = create(client, practitioner("810000000099"))
    sched = create(client, schedule(f"Practitioner/{doctor['id']}", value="prerequisite"))
    person = create(client, patient(family="Prerequis"))
    return {"Practitioner": doctor["id"], "Schedule": sched["id"], "Patient": person["id"]}


def _exercise(client, resource_type: str, refs: dict[str, str]) -> dict[str, Callable[[], None]]:
    """One check per interaction code, run in the order of this dict."""
    state: dict[str, Any] = {}
    if resource_type in READ_ONLY_TYPES:
        # Nobody may create one; the prerequisites' own writes were recorded as some.
        state["resource"] = body(client.get(f"/fhir/{resource_type}?_count=1"))["entry"][0][
            "resource"]

    def do_create() -> None:
        response = send(client, "POST", resource_type, minimal(resource_type, refs))
        assert response.status_code == 201, body(response)
        state["resource"] = body(response)

    def do_read() -> None:
        response = client.get(f"/fhir/{resource_type}/{state['resource']['id']}")
        assert response.status_code == 200
        assert body(response)["id"] == state["resource"]["id"]

    def do_vread() -> None:
        response = client.get(f"/fhir/{resource_type}/{state['resource']['id']}/_history/1")
        assert response.status_code == 200
        assert body(response)["meta"]["versionId"] == "1"

    def do_update() -> None:
        changed = {**state["resource"], "language": "fr-FR"}
        response = send(client, "PUT", f"{resource_type}/{changed['id']}", changed)
        assert response.status_code == 200, body(response)
        assert body(response)["meta"]["versionId"] == "2"

    def do_history_instance() -> None:
        response = client.get(f"/fhir/{resource_type}/{state['resource']['id']}/_history")
        assert response.status_code == 200
        assert body(response)["type"] == "history"
        assert body(response)["total"] >= 1

    def do_history_type() -> None:
        response = client.get(f"/fhir/{resource_type}/_history")
        assert response.status_code == 200
        entries = body(response)["entry"]
        assert {e["resource"]["resourceType"] for e in entries if "resource" in e} == {
            resource_type}

    def do_search_type() -> None:
        response = client.get(f"/fhir/{resource_type}?_id={state['resource']['id']}")
        assert response.status_code == 200
        assert [e["resource"]["id"] for e in body(response)["entry"]] == [
            state["resource"]["id"]]

    def do_delete() -> None:
        response = client.delete(f"/fhir/{resource_type}/{state['resource']['id']}")
        assert response.status_code in (200, 204)
        assert client.get(f"/fhir/{resource_type}/{state['resource']['id']}").status_code == 410

    return {"create": do_create, "read": do_read, "vread": do_vread, "update": do_update,
            "history-instance": do_history_instance, "history-type": do_history_type,
            "search-type": do_search_type, "delete": do_delete}


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_advertised_type_interactions_answer(client, capability, resource_type):
    advertised = {i["code"] for i in _resources(capability)[resource_type]["interaction"]}
    checks = _exercise(client, resource_type, _prerequisites(client))
    assert advertised <= set(checks), f"no check for {advertised - set(checks)}"
    for code, check in checks.items():
        if code in advertised:
            check()


def test_advertised_system_interactions_answer(client, capability):
    codes = {i["code"] for i in _rest(capability)["interaction"]}
    for kind in ("transaction", "batch"):
        if kind in codes:
            response = send(client, "POST", "", bundle(kind))
            assert response.status_code == 200
            assert body(response)["type"] == f"{kind}-response"
    if "history-system" in codes:
        response = client.get("/fhir/_history")
        assert response.status_code == 200
        assert body(response)["type"] == "history"


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_advertised_search_params_are_accepted_strictly(client, capability, resource_type):
    for param in _resources(capability)[resource_type]["searchParam"]:
        value = SAMPLE_VALUES[param["type"]]
        response = client.get(f"/fhir/{resource_type}", query_string={param["name"]: value},
                              headers={"Prefer": "handling=strict"})
        assert response.status_code == 200, (param, body(response))
        result = body(response)
        assert result["type"] == "searchset"
        assert not [e for e in result.get("entry", [])
                    if e.get("search", {}).get("mode") == "outcome"], param


def test_unknown_search_param_is_rejected_when_strict(client):
    response = client.get("/fhir/Practitioner?not-a-param=1",
                          headers={"Prefer": "handling=strict"})
    assert_outcome(response, 400)


def test_metadata_negotiation(client):
    assert client.get("/fhir/metadata", headers={"Accept": "application/json+fhir"}).mimetype == (
        "application/json+fhir")
    assert_outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}),
                   406)


@pytest.mark.parametrize("resource_type", sorted(READ_ONLY_TYPES))
def test_read_only_types_refuse_every_write(client, resource_type):
    existing = _exercise(client, resource_type, _prerequisites(client)) and body(
        client.get(f"/fhir/{resource_type}?_count=1"))["entry"][0]["resource"]
    attempts = [send(client, "POST", resource_type, existing),
                send(client, "PUT", f"{resource_type}/{existing['id']}", existing),
                client.delete(f"/fhir/{resource_type}/{existing['id']}")]
    for response in attempts:
        assert response.status_code == 405
        assert body(response)["resourceType"] == "OperationOutcome"
    assert body(client.get(f"/fhir/{resource_type}/{existing['id']}"))["meta"][
        "versionId"] == "1"


def test_production_declares_how_to_authenticate(engine, database_url):
    from fhir.resources.R4B import get_fhir_model_class

    from app import create_app
    from app.config import Settings

    settings = Settings.from_env(database_url=database_url, security_profile="production",
                                 fhir_base_url="https://agenda.example.fr/fhir")
    statement = body(create_app(settings, engine=engine).test_client().get("/fhir/metadata"))
    security = _rest(statement)["security"]
    codes = {c["code"] for c in security["service"][0]["coding"]}
    assert codes == {"SMART-on-FHIR", "Certificates"}
    (uris,) = security["extension"]
    assert uris["extension"] == [{"url": "token",
                                  "valueUri": "https://agenda.example.fr/oauth/token"}]
    get_fhir_model_class("CapabilityStatement").model_validate(statement)


def test_the_development_profile_declares_no_security(capability):
    assert "security" not in _rest(capability)
