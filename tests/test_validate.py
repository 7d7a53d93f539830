"""The $validate operation through HTTP: answers, modes, profiles, and nothing stored.

Spec: http://hl7.org/fhir/R4/resource-operation-validate.html — 200 with an OperationOutcome
whether or not the resource is valid; 4xx when the validation itself cannot be run.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import create_app
from app.config import Settings
from tests import sas_examples
from tests.factories import (
    BASE_URL,
    FHIR_JSON,
    assert_outcome,
    body,
    create,
    practitioner,
    schedule,
    search_ids,
    send,
    slot,
)

VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def _validate(client: Any, path: str, payload: Any = None, query: str = "") -> dict[str, Any]:
    """POST path/$validate; assert the 200 OperationOutcome R4 requires and return it."""
    response = send(client, "POST", f"{path}/$validate{query}", payload)
    outcome = body(response)
    assert response.status_code == 200, outcome
    assert response.mimetype == FHIR_JSON
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"], outcome
    return outcome


def _parameters(resource: Any = None, **values: str) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = [{"name": name, ("valueCode" if name == "mode" else
                                                     "valueUri"): value}
                                       for name, value in values.items()]
    if resource is not None:
        parameter.append({"name": "resource", "resource": resource})
    return {"resourceType": "Parameters", "parameter": parameter}


def _issues(outcome: dict[str, Any], severity: str) -> list[dict[str, Any]]:
    return [issue for issue in outcome["issue"] if issue["severity"] == severity]


def _success(outcome: dict[str, Any]) -> str:
    assert not _issues(outcome, "error"), outcome
    (info,) = [i for i in _issues(outcome, "information") if i["code"] == "informational"]
    assert info["diagnostics"].startswith("Validation successful"), info
    return str(info["diagnostics"])


# -- the answer --------------------------------------------------------------------------------

def test_a_valid_resource_answers_success_and_stores_nothing(client):
    outcome = _validate(client, "Practitioner", practitioner())
    assert "base R4" in _success(outcome)
    assert search_ids(client, "Practitioner") == []
    assert body(client.get("/fhir/_history"))["total"] == 0


def test_an_invalid_resource_answers_200_with_error_issues_at_their_elements(client):
    resource = {**practitioner(), "active": "yes", "gender": "robot"}
    outcome = _validate(client, "Practitioner", resource)
    errors = _issues(outcome, "error")
    assert {e["expression"][0] for e in errors} == {"Practitioner.active",
                                                    "Practitioner.gender"}
    assert not [i for i in outcome["issue"] if i["code"] == "informational"]
    assert search_ids(client, "Practitioner") == []


def test_the_resource_may_come_in_a_parameters_body(client):
    outcome = _validate(client, "Practitioner", _parameters({**practitioner(), "active": 1}))
    assert [e["expression"] for e in _issues(outcome, "error")] == [["Practitioner.active"]]
    _success(_validate(client, "Practitioner", _parameters(practitioner())))


def test_a_malformed_reference_is_an_error_naming_the_element(client):
    outcome = _validate(client, "Slot", slot("Schedule/../../x"))
    (error,) = _issues(outcome, "error")
    assert error["expression"] == ["Slot.schedule.reference"]
    assert "Schedule/../../x" in error["diagnostics"]


def test_missing_targets_are_warnings_but_errors_for_mode_create(client):
    resource = slot("Schedule/nope")
    warning = _issues(_validate(client, "Slot", resource), "warning")
    assert [w["expression"] for w in warning] == [["Slot.schedule.reference"]]
    outcome = _validate(client, "Slot", _parameters(resource, mode="create"))
    (error,) = _issues(outcome, "error")
    assert error["code"] == "not-found" and error["expression"] == ["Slot.schedule.reference"]


def test_mode_create_with_existing_targets_is_successful(client):
    doctor = create(client, practitioner())
    _success(_validate(client, "Schedule",
                       _parameters(schedule(f"Practitioner/{doctor['id']}"), mode="create")))
    assert search_ids(client, "Schedule") == []


# -- SAS profiles ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", sorted(sas_examples.BY_PROFILE))
def test_each_sas_profile_example_is_valid(client, url):
    resource = sas_examples.BY_PROFILE[url]()
    outcome = _validate(client, resource["resourceType"], resource)
    assert url in _success(outcome)
    # Only that the example's local targets (Schedule/sc1…) are not on this server.
    assert {w["code"] for w in _issues(outcome, "warning")} <= {"not-found"}, outcome


def test_a_declared_sas_profile_is_checked(client):
    resource = sas_examples.practitioner()
    del resource["identifier"]
    outcome = _validate(client, "Practitioner", resource)
    (error,) = _issues(outcome, "error")
    assert error["expression"] == ["Practitioner.identifier"]
    assert "FrPractitionerAgregateur" in error["diagnostics"]


@pytest.mark.parametrize("how", ["parameter", "query"])
def test_the_profile_parameter_names_a_profile_to_check(client, how):
    resource = practitioner()  # valid R4, no meta.profile, not a regulator account
    url = sas_examples.REGUL
    outcome = (_validate(client, "Practitioner", _parameters(resource, profile=url))
               if how == "parameter" else
               _validate(client, "Practitioner", resource, query=f"?profile={url}"))
    errors = _issues(outcome, "error")
    assert errors and all("FrPractitionerRegul" in e["diagnostics"] for e in errors), outcome
    assert "Practitioner.identifier[0].type" in {x for e in errors for x in e["expression"]}


def test_an_unknown_profile_parameter_is_400_naming_the_known_ones(client):
    response = send(client, "POST", "Practitioner/$validate",
                    _parameters(practitioner(), profile="https://example.org/Nope"))
    outcome = assert_outcome(response, 400, "not-supported")
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert "https://example.org/Nope" in diagnostics
    assert sas_examples.REGUL in diagnostics


def test_the_base_profile_of_the_type_is_accepted_as_profile_parameter(client):
    base = "http://hl7.org/fhir/StructureDefinition/Practitioner"
    _success(_validate(client, "Practitioner", _parameters(practitioner(), profile=base)))


def test_an_unknown_declared_profile_is_a_warning(client):
    resource = {**practitioner(), "meta": {"profile": ["https://example.org/fr-core-x"]}}
    outcome = _validate(client, "Practitioner", resource)
    (warning,) = _issues(outcome, "warning")
    assert warning["code"] == "not-supported" and "fr-core-x" in warning["diagnostics"]
    _success(outcome)


def test_a_sas_answer_bundle_is_validated(client):
    bundle = sas_examples.bundle()
    bundle["entry"][0]["resource"]["status"] = "busy"
    outcome = _validate(client, "Bundle", bundle)
    assert "Bundle.entry[0].resource.status" in {
        x for e in _issues(outcome, "error") for x in e["expression"]}


# -- instance level and modes ------------------------------------------------------------------

def test_mode_update_checks_the_id_against_the_url(client):
    doctor = create(client, practitioner())
    good = _parameters({**practitioner(), "id": doctor["id"]}, mode="update")
    _success(_validate(client, f"Practitioner/{doctor['id']}", good))
    bad = _parameters({**practitioner(), "id": "other"}, mode="update")
    (error,) = _issues(_validate(client, f"Practitioner/{doctor['id']}", bad), "error")
    assert error["expression"] == ["Practitioner.id"]
    assert body(client.get(f"/fhir/Practitioner/{doctor['id']}"))["meta"]["versionId"] == "1"


def test_mode_delete_needs_no_resource_and_a_known_instance(client):
    doctor = create(client, practitioner())
    assert "delete" in _success(_validate(client, f"Practitioner/{doctor['id']}",
                                          _parameters(mode="delete")))
    assert "delete" in _success(_validate(client, f"Practitioner/{doctor['id']}",
                                          query="?mode=delete"))
    assert client.get(f"/fhir/Practitioner/{doctor['id']}").status_code == 200
    assert_outcome(send(client, "POST", "Practitioner/unknown/$validate",
                        _parameters(mode="delete")), 404, "not-found")


@pytest.mark.parametrize("payload,status,code", [
    (_parameters(practitioner(), mode="update"), 400, "invalid"),  # update needs an id URL
    (_parameters(practitioner(), mode="patch"), 400, "value"),
    (_parameters(), 400, "required"),
    ({"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]}, 400,
     "not-supported"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "profile", "valueUri": "a"}, {"name": "profile", "valueUri": "b"},
        {"name": "resource", "resource": practitioner()}]}, 400, "invalid"),
    ({**slot("Schedule/1")}, 400, "invalid"),  # a Slot sent to Practitioner/$validate
])
def test_requests_that_cannot_be_validated_are_4xx(client, payload, status, code):
    assert_outcome(send(client, "POST", "Practitioner/$validate", payload), status, code)


def test_bodies_other_than_json_are_415(client):
    response = send(client, "POST", "Practitioner/$validate", "<Practitioner/>",
                    headers={"Content-Type": "application/fhir+xml"})
    assert_outcome(response, 415, "not-supported")


def test_unknown_types_and_operations_are_404(client):
    assert_outcome(send(client, "POST", "Observation/$validate", {"resourceType": "Observation"}),
                   404)
    outcome = assert_outcome(send(client, "POST", "Practitioner/$everything", practitioner()),
                             404, "not-supported")
    assert "$everything" in outcome["issue"][0]["diagnostics"]


def test_the_capability_statement_declares_validate_on_every_type(client):
    statement = body(client.get("/fhir/metadata"))
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for resource_type, entry in resources.items():
        assert {"name": "validate", "definition": VALIDATE} in entry["operation"], resource_type
    assert sas_examples.SAS + "BundleAgregateur" in resources["Bundle"]["supportedProfile"]
    assert sas_examples.REGUL in resources["Practitioner"]["supportedProfile"]


def test_validate_needs_authentication_in_production(engine, database_url):
    settings = Settings.from_env(database_url=database_url, fhir_base_url=BASE_URL,
                                 security_profile="production")
    client = create_app(settings, engine=engine).test_client()
    assert_outcome(send(client, "POST", "Practitioner/$validate", practitioner()), 401, "login")
