"""The profile validator (app.validation.profiles) on the SAS example and hand-made variants.

The SAS example bundle is read from ../shared when present; every broken variant is built here
from a small valid bundle of our own, so these tests run without the reference material.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from app.outcome import Issue
from app.validation.profiles import ProfileSet, default_profiles, load_profiles
from tests import sas_examples
from tests.sas_examples import (
    IDNPS_SYSTEM,
    REGUL,
    SAS,
    TYPE_SYSTEM,
)
from tests.sas_examples import appointment as _appointment
from tests.sas_examples import bundle as _bundle
from tests.sas_examples import practitioner as _practitioner
from tests.sas_examples import regulator as _regulator
from tests.sas_examples import role as _role
from tests.sas_examples import slot as _slot

IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
R5_SERVICE_TYPE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
SAS_PACKAGE = PROJECT_ROOT.parent / "shared" / "reference" / "sas-ig" / "package"
EXAMPLES = SAS_PACKAGE / "example"

Json = dict[str, Any]


@pytest.fixture(scope="module")
def profiles() -> ProfileSet:
    return default_profiles()


def _errors(issues: list[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.severity == "error"]


def _at(issues: list[Issue], path: str, code: str | None = None) -> list[Issue]:
    return [i for i in issues if path in i.expression and (code is None or i.code == code)]


def _assert_issue(issues: list[Issue], path: str, code: str) -> None:
    found = _at(_errors(issues), path, code)
    assert found, f"no {code} error at {path}; got " + "; ".join(
        f"{i.code} {i.expression} {i.diagnostics}" for i in issues)


# -- the SAS example -----------------------------------------------------------------------


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared SAS reference not available")
def test_sas_example_bundle_is_valid(profiles: ProfileSet) -> None:
    bundle = json.loads((EXAMPLES / "Bundle-ExampleBundlePSIndiv.json").read_text())
    assert profiles.validate(bundle) == []


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared SAS reference not available")
@pytest.mark.parametrize("name", [
    "Slot-ExampleSlotPSIndiv1.json", "Schedule-ExampleSchedule.json",
    "Practitioner-ExamplePractitioner.json",
    "PractitionerRole-ExamplePractitionerRoleAgregateur.json",
    "Practitioner-ExamplePractitionerRegul1.json", "Practitioner-ExamplePractitionerRegul3.json",
    "Appointment-1.json", "Appointment-2.json",
    "Bundle-ExampleBundleCPTS.json", "Bundle-ExampleBundleAgregateurSOS.json",
    "Slot-ExampleSlotCPTS2.json", "HealthcareService-ExampleHealthcareServiceCPTS2.json",
    "Organization-ExampleOrgaCPTS2.json", "Location-3333333333.json",
    "Organization-ExampleOrgaSOS2.json", "Schedule-ExampleScheduleSOS3.json",
    "Slot-ExampleSlotSOS1.json",
])
def test_sas_example_resources_are_valid(profiles: ProfileSet, name: str) -> None:
    assert profiles.validate(json.loads((EXAMPLES / name).read_text())) == []


# -- loading -------------------------------------------------------------------------------


def test_default_profiles_cover_the_sas_profiles_and_are_cached(profiles: ProfileSet) -> None:
    names = ["BundleAgregateur", "FrSlotAgregateur", "FrScheduleAgregateur",
             "FrPractitionerAgregateur", "FrPractitionerRoleExerciceAgregateur",
             "FrLocationAgregateur", "FrAppointmentSAS"]
    offers = ["sas-cpts-bundle-aggregator", "sas-cpts-slot-aggregator",
              "sas-cpts-healthcareservice-aggregator", "sas-cpts-organization-aggregator",
              "sas-sos-bundle-aggregator", "sas-sos-slot-aggregator",
              "sas-sos-schedule-aggregator", "sas-sos-location-aggregator",
              "sas-sos-organization-aggregator", "sas-sos-appointment"]
    assert set(profiles.profiles) == {SAS + n for n in names} | {REGUL} | {
        IG + n for n in offers} | {R5_SERVICE_TYPE}
    assert default_profiles() is profiles
    assert load_profiles(PROJECT_ROOT / "profiles") is profiles


def test_a_required_binding_without_value_set_is_refused(tmp_path: Path) -> None:
    definition = {"resourceType": "StructureDefinition", "url": "urn:test:p", "name": "P",
                  "type": "Slot", "differential": {"element": [{
                      "id": "Slot.status", "path": "Slot.status",
                      "binding": {"strength": "required", "valueSet": "urn:test:missing"}}]}}
    (tmp_path / "p.json").write_text(json.dumps(definition))
    with pytest.raises(ValueError, match="urn:test:missing"):
        load_profiles(tmp_path)


# -- bundle --------------------------------------------------------------------------------


def test_handmade_bundle_is_valid(profiles: ProfileSet) -> None:
    assert profiles.validate(_bundle()) == []


def test_bundle_without_total_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    del bundle["total"]
    _assert_issue(profiles.validate(bundle), "Bundle.total", "required")


def test_bundle_of_wrong_type_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    bundle["type"] = "collection"
    _assert_issue(profiles.validate(bundle), "Bundle.type", "value")


def test_unknown_profile_is_reported(profiles: ProfileSet) -> None:
    slot = _slot()
    slot["meta"]["profile"].append("http://interopsante.org/fhir/StructureDefinition/FrSlot")
    issues = profiles.validate(slot)
    _assert_issue(issues, "Slot.meta.profile", "not-supported")
    assert "FrSlot" in _at(issues, "Slot.meta.profile")[0].diagnostics


def test_entry_without_meta_profile_is_held_to_its_slice_profile(profiles: ProfileSet) -> None:
    bundle = _bundle()
    slot = bundle["entry"][0]["resource"]
    del slot["meta"]["profile"]
    slot["status"] = "busy"
    _assert_issue(profiles.validate(bundle), "Bundle.entry[0].resource.status", "value")


# -- slot ----------------------------------------------------------------------------------


def test_busy_slot_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    bundle["entry"][0]["resource"]["status"] = "busy"
    _assert_issue(profiles.validate(bundle), "Bundle.entry[0].resource.status", "value")


def test_standalone_slot_paths_start_at_the_resource(profiles: ProfileSet) -> None:
    slot = _slot()
    slot["status"] = "busy"
    _assert_issue(profiles.validate(slot), "Slot.status", "value")


def test_patient_reserved_security_label_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    bundle["entry"][0]["resource"]["meta"]["security"][1]["code"] = "PATIENT"
    issues = profiles.validate(bundle)
    _assert_issue(issues, "Bundle.entry[0].resource.meta.security[1]", "code-invalid")
    assert len(_errors(issues)) == 1


def test_security_label_with_another_system_is_rejected(profiles: ProfileSet) -> None:
    slot = _slot()
    confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    slot["meta"]["security"][0]["system"] = confidentiality
    _assert_issue(profiles.validate(slot), "Slot.meta.security[0]", "code-invalid")


def test_consultation_type_outside_act_encounter_codes_is_rejected(profiles: ProfileSet) -> None:
    slot = _slot()
    slot["serviceType"][0]["coding"][0]["code"] = "XYZ"
    _assert_issue(profiles.validate(slot), "Slot.serviceType[0]", "code-invalid")


def test_consultation_type_coding_must_all_carry_the_act_code_system(profiles: ProfileSet) -> None:
    # A member of the TypeConsultation slice: each of its codings must be ActCode codings.
    slot = _slot()
    slot["serviceType"][0]["coding"].append({"code": "VR"})
    _assert_issue(profiles.validate(slot), "Slot.serviceType[0].coding[1].system", "required")


def test_amb_coding_with_another_system_is_flagged(profiles: ProfileSet) -> None:
    # Open slicing on coding.system: such a serviceType is no TypeConsultation member, so the
    # profile does not forbid it (the HL7 validator accepts it too); we warn at its location.
    slot = _slot()
    slot["serviceType"][0]["coding"][0]["system"] = "http://hl7.org/fhir/v3/ActCode"
    issues = profiles.validate(slot)
    assert _errors(issues) == []
    warnings = _at(issues, "Slot.serviceType[0]", "code-invalid")
    assert warnings and warnings[0].severity == "warning"
    assert "TypeConsultation" in warnings[0].diagnostics


def test_slot_schedule_must_be_a_schedule(profiles: ProfileSet) -> None:
    slot = _slot()
    slot["schedule"] = {"reference": "Practitioner/p1"}
    _assert_issue(profiles.validate(slot), "Slot.schedule.reference", "invalid")


# -- practitioner --------------------------------------------------------------------------


def test_practitioner_without_identifier_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    del bundle["entry"][2]["resource"]["identifier"]
    _assert_issue(profiles.validate(bundle), "Bundle.entry[2].resource.identifier", "required")


def test_practitioner_with_wrong_identifier_system_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    bundle["entry"][2]["resource"]["identifier"][0]["system"] = "urn:oid:1.2.250.1.71.4.2.2"
    _assert_issue(profiles.validate(bundle), "Bundle.entry[2].resource.identifier[0].system",
                  "value")


def test_practitioner_identifier_type_must_be_idnps(profiles: ProfileSet) -> None:
    practitioner = _practitioner()
    practitioner["identifier"][0]["type"]["coding"][0]["code"] = "INTRN"
    _assert_issue(profiles.validate(practitioner), "Practitioner.identifier[0].type", "value")


# -- practitioner role and its contained location ------------------------------------------


def test_role_without_contained_location_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    del bundle["entry"][3]["resource"]["contained"]
    issues = profiles.validate(bundle)
    _assert_issue(issues, "Bundle.entry[3].resource.contained", "required")
    _assert_issue(issues, "Bundle.entry[3].resource.location[0].reference", "not-found")


def test_role_location_to_a_missing_contained_id_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    bundle["entry"][3]["resource"]["location"] = [{"reference": "#elsewhere"}]
    _assert_issue(profiles.validate(bundle), "Bundle.entry[3].resource.location[0].reference",
                  "not-found")


def test_role_location_must_be_contained(profiles: ProfileSet) -> None:
    role = _role()
    role["location"] = [{"reference": "Location/loc1"}]
    _assert_issue(profiles.validate(role), "PractitionerRole.location[0].reference", "invalid")


def test_role_has_exactly_one_location(profiles: ProfileSet) -> None:
    role = _role()
    role["location"].append({"reference": "#loc1"})
    _assert_issue(profiles.validate(role), "PractitionerRole.location", "structure")


def test_role_organization_must_use_idnst(profiles: ProfileSet) -> None:
    role = _role()
    role["organization"]["identifier"]["system"] = "urn:oid:1.2.250.1.71.4.2.1"
    _assert_issue(profiles.validate(role), "PractitionerRole.organization.identifier.system",
                  "value")


def test_location_without_line_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    del bundle["entry"][3]["resource"]["contained"][0]["address"]["line"]
    _assert_issue(profiles.validate(bundle),
                  "Bundle.entry[3].resource.contained[0].address.line", "required")


def test_location_without_postal_code_is_rejected(profiles: ProfileSet) -> None:
    bundle = _bundle()
    del bundle["entry"][3]["resource"]["contained"][0]["address"]["postalCode"]
    _assert_issue(profiles.validate(bundle),
                  "Bundle.entry[3].resource.contained[0].address.postalCode", "required")


def test_location_with_two_lines_is_rejected(profiles: ProfileSet) -> None:
    role = _role()
    role["contained"][0]["address"]["line"].append("Bâtiment B")
    _assert_issue(profiles.validate(role), "PractitionerRole.contained[0].address.line",
                  "structure")


def test_contained_location_is_held_to_the_target_profile(profiles: ProfileSet) -> None:
    # No meta.profile on the Location: PractitionerRole.location's target profile still applies,
    # including the FrLocation identifier inherited by FrLocationAgregateur.
    role = _role()
    location = role["contained"][0]
    del location["meta"]
    del location["identifier"]
    _assert_issue(profiles.validate(role), "PractitionerRole.contained[0].identifier",
                  "required")


# -- regulator accounts and appointments ---------------------------------------------------


def test_regulator_is_valid(profiles: ProfileSet) -> None:
    assert profiles.validate(_regulator()) == []


def test_regulator_internal_id_needs_intrn_type(profiles: ProfileSet) -> None:
    regulator = _regulator()
    regulator["identifier"][0]["type"]["coding"][0]["code"] = "IDNPS"
    _assert_issue(profiles.validate(regulator), "Practitioner.identifier[0].type", "value")


def test_regulator_has_at_most_one_national_id(profiles: ProfileSet) -> None:
    regulator = _regulator()
    national = {"type": {"coding": [{"system": TYPE_SYSTEM, "code": "IDNPS"}]},
                "system": IDNPS_SYSTEM, "value": "810000000002"}
    regulator["identifier"] += [national, copy.deepcopy(national)]
    issues = profiles.validate(regulator)
    _assert_issue(issues, "Practitioner.identifier", "structure")
    assert "IdentifiantNatPS" in _at(issues, "Practitioner.identifier")[0].diagnostics


def test_regulator_needs_active_and_email(profiles: ProfileSet) -> None:
    regulator = _regulator()
    del regulator["active"]
    regulator["telecom"][0]["system"] = "phone"
    issues = profiles.validate(regulator)
    _assert_issue(issues, "Practitioner.active", "required")
    _assert_issue(issues, "Practitioner.telecom[0].system", "value")


def test_appointment_is_valid(profiles: ProfileSet) -> None:
    assert profiles.validate(_appointment()) == []


def test_appointment_without_operator_is_rejected(profiles: ProfileSet) -> None:
    appointment = _appointment()
    del appointment["extension"]
    issues = profiles.validate(appointment)
    _assert_issue(issues, "Appointment.extension", "required")
    assert any("appointmentOperator" in i.diagnostics for i in _at(issues, "Appointment.extension"))


def test_appointment_operator_must_be_a_reference(profiles: ProfileSet) -> None:
    appointment = _appointment()
    operator = appointment["extension"][0]
    operator["valueString"] = operator.pop("valueReference")["identifier"]["value"]
    _assert_issue(profiles.validate(appointment), "Appointment.extension[0].valueString",
                  "structure")


def test_appointment_statuses(profiles: ProfileSet) -> None:
    appointment = _appointment()
    appointment["status"] = "done"
    appointment["participant"][0]["status"] = "declined"
    issues = profiles.validate(appointment)
    _assert_issue(issues, "Appointment.status", "code-invalid")
    _assert_issue(issues, "Appointment.participant[0].status", "value")


def test_appointment_participant_identifier_must_be_idnps(profiles: ProfileSet) -> None:
    appointment = _appointment()
    appointment["participant"][0]["actor"]["identifier"]["system"] = "urn:oid:1.2.250.1.71.4.2.2"
    _assert_issue(profiles.validate(appointment),
                  "Appointment.participant[0].actor.identifier.system", "value")


# -- the CPTS and SOS Médecins offers --------------------------------------------------------


def test_cpts_and_sos_answers_are_valid(profiles: ProfileSet) -> None:
    assert profiles.validate(sas_examples.cpts_bundle()) == []
    assert profiles.validate(sas_examples.sos_bundle()) == []


def test_bundle_entries_are_sliced_by_the_profile_of_their_resource(profiles: ProfileSet) -> None:
    bundle = sas_examples.sos_bundle()
    # A Location that neither claims nor meets the SOS profile is in no slice.
    location = bundle["entry"][2]["resource"]
    location["meta"]["profile"] = []
    del location["name"]
    issues = profiles.validate(bundle)
    _assert_issue(issues, "Bundle.entry", "required")
    assert any("locationAgregateurSOS" in i.diagnostics for i in _errors(issues))
    # One that meets it without claiming it is counted.
    bundle = sas_examples.sos_bundle()
    bundle["entry"][2]["resource"]["meta"]["profile"] = []
    assert _errors(profiles.validate(bundle)) == []


def test_cpts_reference_concepts_need_their_extension(profiles: ProfileSet) -> None:
    bundle = sas_examples.cpts_bundle()
    concepts = bundle["entry"][0]["resource"]["serviceType"]
    del concepts[2]["extension"]  # a 604 concept without the HealthcareService
    concepts[0]["extension"] = copy.deepcopy(concepts[3]["extension"])  # AMB with one
    issues = profiles.validate(bundle)
    _assert_issue(issues, "Bundle.entry[0].resource.serviceType[2].extension", "required")
    _assert_issue(issues, "Bundle.entry[0].resource.serviceType[0].extension", "structure")


def test_the_cpts_extension_refers_to_a_healthcare_service(profiles: ProfileSet) -> None:
    slot = sas_examples.cpts_slot()
    slot["serviceType"][2]["extension"][0]["valueReference"] = {"reference": "Organization/o"}
    issues = profiles.validate(slot)
    _assert_issue(issues, "Slot.serviceType[2].extension[0].valueReference.reference",
                  "invalid")
    assert {"FrSlotAgregateurCPTS", "SASServiceTypeR5"} <= {
        i.diagnostics.rsplit("(", 1)[1].rstrip(")") for i in _errors(issues)}


def test_structure_id_invariants(profiles: ProfileSet) -> None:
    cpts = sas_examples.cpts_organization()
    cpts["identifier"][0]["value"] = "3" + "1" * 14  # a SIRET: the CPTS needs its FINESS
    _assert_issue(profiles.validate(cpts), "Organization.identifier[0].value", "invariant")
    sos = sas_examples.sos_organization()
    sos["identifier"][0]["value"] = "33333333330001"  # unprefixed
    issues = profiles.validate(sos)
    _assert_issue(issues, "Organization.identifier[0].value", "invariant")
    assert "SIRET-invariant" in _at(issues, "Organization.identifier[0].value")[0].diagnostics


def test_an_invariant_we_cannot_evaluate_is_reported(tmp_path: Path) -> None:
    definition = {"resourceType": "StructureDefinition", "url": "urn:test:p", "name": "P",
                  "type": "Organization", "differential": {"element": [{
                      "id": "Organization.name", "path": "Organization.name",
                      "constraint": [{"key": "x-1", "expression": "length() > 2"}]}]}}
    (tmp_path / "p.json").write_text(json.dumps(definition))
    issues = load_profiles(tmp_path).validate(
        {"resourceType": "Organization", "name": "A", "meta": {"profile": ["urn:test:p"]}})
    assert [(i.severity, i.code) for i in issues] == [("warning", "not-supported")]


def test_sos_slots_place_and_association(profiles: ProfileSet) -> None:
    slot = sas_examples.sos_slot()
    slot["meta"]["security"].append({"system": sas_examples.SLOT_TYPE, "code": "PRO"})
    slot["serviceType"] = [{"coding": [{"system": sas_examples.ACT_CODE, "code": "EMER"}]}]
    issues = profiles.validate(slot)
    _assert_issue(issues, "Slot.meta.security[2]", "code-invalid")
    _assert_issue(issues, "Slot.serviceType[0].coding[0]", "code-invalid")
    location = sas_examples.sos_location()
    location["address"]["postalCode"] = "440000"
    location["identifier"][0]["type"]["coding"][0]["code"] = "IDNST"
    del location["managingOrganization"]
    issues = profiles.validate(location)
    _assert_issue(issues, "Location.address.postalCode", "value")
    _assert_issue(issues, "Location.identifier[0].type", "value")
    _assert_issue(issues, "Location.managingOrganization", "required")
    schedule = sas_examples.sos_schedule()
    schedule["actor"] = [{"display": "PFG"}]
    _assert_issue(profiles.validate(schedule), "Schedule.actor[0].reference", "required")


def test_sos_appointment_participant_statuses(profiles: ProfileSet) -> None:
    appointment = sas_examples.sos_appointment()
    appointment["participant"][0]["status"] = "tentative"
    _assert_issue(profiles.validate(appointment), "Appointment.participant[0].status",
                  "code-invalid")
