"""Value extraction for the index tables, datatype by datatype (no database)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from app.search.extract import (
    date_rows,
    normalise,
    parse_reference,
    reference_rows,
    string_rows,
    token_rows,
    walk,
)
from app.search.registry import SearchParam, get_param

BASE = "http://localhost/fhir"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
NOS_R38 = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
US = timedelta(microseconds=1)


def param(resource_type: str, name: str) -> SearchParam:
    found = get_param(resource_type, name)
    assert found is not None, f"{resource_type}.{name} is not registered"
    return found


# -- helpers ---------------------------------------------------------------------------------

def test_normalise_folds_case_accents_and_spaces() -> None:
    assert normalise("  Hélène   ÉLODIE  ") == "helene elodie"
    assert normalise("Ségolène Çà") == "segolene ca"
    assert normalise("STRASSE") == normalise("straße")


def test_walk_follows_nested_lists() -> None:
    resource = {"resourceType": "Practitioner",
                "name": [{"given": ["Anne", "Marie"]}, {"given": ["Lou"]}, {"family": "X"}]}
    assert walk(resource, "Practitioner.name.given") == ["Anne", "Marie", "Lou"]
    assert walk(resource, "Practitioner.address.city") == []


# -- token -----------------------------------------------------------------------------------

def test_identifier_gives_system_value_and_type_text() -> None:
    resource = {"resourceType": "Practitioner", "identifier": [
        {"system": RPPS, "value": "810003456786", "type": {"text": "N° RPPS"}},
        {"value": "no-system"},
    ]}
    assert token_rows(resource, param("Practitioner", "identifier")) == [
        (RPPS, "810003456786", "n° rpps"), (None, "no-system", None)]


def test_identifier_type_coding_without_text_gives_no_text() -> None:
    resource = {"resourceType": "Practitioner", "identifier": [
        {"type": {"coding": [{"code": "IDNPS"}]}, "system": RPPS, "value": "81"}]}
    assert token_rows(resource, param("Practitioner", "identifier")) == [(RPPS, "81", None)]


def test_codeable_concept_gives_one_row_per_coding_with_display() -> None:
    resource = {"resourceType": "PractitionerRole", "specialty": [
        {"coding": [{"system": NOS_R38, "code": "SM54", "display": "Médecine générale"},
                    {"system": "http://other", "code": "GP"}]}]}
    assert token_rows(resource, param("PractitionerRole", "specialty")) == [
        (NOS_R38, "SM54", "medecine generale"), ("http://other", "GP", None)]


def test_codeable_concept_text_is_used_when_a_coding_has_no_display() -> None:
    resource = {"resourceType": "PractitionerRole", "specialty": [
        {"coding": [{"system": NOS_R38, "code": "SM54"}], "text": "Généraliste"}]}
    assert token_rows(resource, param("PractitionerRole", "specialty")) == [
        (NOS_R38, "SM54", "generaliste")]


def test_codeable_concept_with_text_only() -> None:
    resource = {"resourceType": "Organization", "type": [{"text": "Cabinet libéral"}]}
    assert token_rows(resource, param("Organization", "type")) == [
        (None, None, "cabinet liberal")]


def test_coding_gives_system_code_display() -> None:
    resource = {"resourceType": "Slot", "meta": {"security": [
        {"system": "https://sas/typecreneau", "code": "PUBLIC", "display": "Public"},
        {"code": "PRO"}]}}
    assert token_rows(resource, param("Slot", "_security")) == [
        ("https://sas/typecreneau", "PUBLIC", "public"), (None, "PRO", None)]


@pytest.mark.parametrize(("value", "code"), [(True, "true"), (False, "false")])
def test_boolean_is_a_code_without_system(value: bool, code: str) -> None:
    resource = {"resourceType": "Practitioner", "active": value}
    assert token_rows(resource, param("Practitioner", "active")) == [(None, code, None)]


def test_code_is_a_code_without_system() -> None:
    resource = {"resourceType": "Slot", "status": "busy-unavailable"}
    assert token_rows(resource, param("Slot", "status")) == [(None, "busy-unavailable", None)]


def test_contact_point_gives_its_value() -> None:
    resource = {"resourceType": "Practitioner", "telecom": [
        {"system": "phone", "value": "+33465710111"}]}
    rows = token_rows(resource, param("Practitioner", "telecom"))
    assert [row[1] for row in rows] == ["+33465710111"]


def test_missing_element_gives_no_token() -> None:
    assert token_rows({"resourceType": "Practitioner"}, param("Practitioner", "active")) == []


def test_long_token_values_are_cut_to_the_column_size() -> None:
    resource = {"resourceType": "Practitioner", "identifier": [{"system": "s", "value": "x" * 400}]}
    ((_, code, _),) = token_rows(resource, param("Practitioner", "identifier"))
    assert code == "x" * 255


# -- string ----------------------------------------------------------------------------------

def test_human_name_parts_are_each_indexed_normalised_and_exact() -> None:
    resource = {"resourceType": "Practitioner", "name": [
        {"family": "Lefèvre", "given": ["Hélène", "Marie"], "prefix": ["Dr"],
         "suffix": ["PhD"], "text": "Dr Hélène Lefèvre"}]}
    assert string_rows(resource, param("Practitioner", "name")) == [
        ("lefevre", "Lefèvre"), ("helene", "Hélène"), ("marie", "Marie"), ("dr", "Dr"),
        ("phd", "PhD"), ("dr helene lefevre", "Dr Hélène Lefèvre")]


def test_family_and_given_parameters_only_see_their_part() -> None:
    resource = {"resourceType": "Practitioner", "name": [
        {"family": "Lefèvre", "given": ["Hélène"]}]}
    assert string_rows(resource, param("Practitioner", "family")) == [("lefevre", "Lefèvre")]
    assert string_rows(resource, param("Practitioner", "given")) == [("helene", "Hélène")]


def test_name_with_text_only() -> None:
    resource = {"resourceType": "Practitioner", "name": [{"text": "Jean Dupont"}]}
    assert string_rows(resource, param("Practitioner", "name")) == [("jean dupont", "Jean Dupont")]


def test_address_parts_are_indexed() -> None:
    resource = {"resourceType": "Location", "address": {
        "line": ["12 montée de la Grande-Côte", "Bât. B"], "city": "Lyon",
        "postalCode": "69001", "country": "FRA"}}
    assert string_rows(resource, param("Location", "address")) == [
        ("12 montee de la grande-cote", "12 montée de la Grande-Côte"), ("bat. b", "Bât. B"),
        ("lyon", "Lyon"), ("69001", "69001"), ("fra", "FRA")]
    assert string_rows(resource, param("Location", "address-city")) == [("lyon", "Lyon")]
    assert string_rows(resource, param("Location", "address-postalcode")) == [
        ("69001", "69001")]


def test_address_list_on_organization() -> None:
    resource = {"resourceType": "Organization", "address": [
        {"city": "Lyon"}, {"city": "Villeurbanne"}]}
    assert string_rows(resource, param("Organization", "address-city")) == [
        ("lyon", "Lyon"), ("villeurbanne", "Villeurbanne")]


def test_plain_strings_and_aliases_are_deduplicated() -> None:
    resource = {"resourceType": "Location", "name": "Cabinet des Pentes",
                "alias": ["Cabinet des Pentes", "CMP"]}
    assert string_rows(resource, param("Location", "name")) == [
        ("cabinet des pentes", "Cabinet des Pentes"), ("cmp", "CMP")]


# -- date ------------------------------------------------------------------------------------

def test_instant_is_its_own_precision_range() -> None:
    resource = {"resourceType": "Slot", "start": "2026-03-02T09:00:00+01:00"}
    assert date_rows(resource, param("Slot", "start"), "Europe/Paris") == [
        (datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 8, 0, 1) - US)]


def test_date_without_time_uses_the_default_zone() -> None:
    resource = {"resourceType": "Patient", "birthDate": "1980-07-14"}
    assert date_rows(resource, param("Patient", "birthdate"), "Europe/Paris") == [
        (datetime(1980, 7, 13, 22), datetime(1980, 7, 14, 22) - US)]


def test_period_spans_start_low_to_end_high() -> None:
    resource = {"resourceType": "Schedule", "planningHorizon": {
        "start": "2026-03-02T08:00:00+01:00", "end": "2026-03-06"}}
    assert date_rows(resource, param("Schedule", "date"), "Europe/Paris") == [
        (datetime(2026, 3, 2, 7), datetime(2026, 3, 6, 23) - US)]


def test_open_ended_period() -> None:
    resource = {"resourceType": "Schedule", "planningHorizon": {"start": "2026-03-02"}}
    ((low, high),) = date_rows(resource, param("Schedule", "date"), "Europe/Paris")
    assert low == datetime(2026, 3, 1, 23)
    assert high.year == 9999


def test_period_without_start_or_end_and_bad_dates_give_nothing() -> None:
    schedule = {"resourceType": "Schedule", "planningHorizon": {}}
    assert date_rows(schedule, param("Schedule", "date"), "Europe/Paris") == []
    slot = {"resourceType": "Slot", "start": "not a date"}
    assert date_rows(slot, param("Slot", "start"), "Europe/Paris") == []


# -- reference -------------------------------------------------------------------------------

@pytest.mark.parametrize(("reference", "expected"), [
    ("Practitioner/p1", ("Practitioner", "p1", None)),
    ("Practitioner/p1/_history/3", ("Practitioner", "p1", None)),
    (f"{BASE}/Practitioner/p1", ("Practitioner", "p1", None)),
    (f"{BASE}/Practitioner/p1/_history/3", ("Practitioner", "p1", None)),
    ("https://annuaire.example/fhir/Practitioner/p1",
     ("Practitioner", "p1", "https://annuaire.example/fhir/Practitioner/p1")),
    ("http://localhost/other/Practitioner/p1",
     ("Practitioner", "p1", "http://localhost/other/Practitioner/p1")),
    ("urn:uuid:8a5d8c3e-9d0a-4cbb-b7a8-1a2b3c4d5e6f",
     (None, None, "urn:uuid:8a5d8c3e-9d0a-4cbb-b7a8-1a2b3c4d5e6f")),
    ("#contained-1", (None, None, None)),
])
def test_parse_reference_forms(reference: str, expected: tuple[Any, ...]) -> None:
    assert parse_reference(reference, BASE) == expected


def test_reference_rows_of_each_form() -> None:
    resource = {"resourceType": "Schedule", "actor": [
        {"reference": "Practitioner/p1"},
        {"reference": f"{BASE}/PractitionerRole/r1"},
        {"reference": "Location/l1/_history/2"},
        {"reference": "https://annuaire.example/fhir/Practitioner/ext"},
        {"reference": "#contained"},
        {"identifier": {"system": RPPS, "value": "81"}},
        {"display": "No reference at all"},
    ]}
    assert reference_rows(resource, param("Schedule", "actor"), BASE) == [
        ("Practitioner", "p1", None),
        ("PractitionerRole", "r1", None),
        ("Location", "l1", None),
        ("Practitioner", "ext", "https://annuaire.example/fhir/Practitioner/ext"),
    ]


def test_reference_to_a_type_outside_the_targets_is_not_indexed() -> None:
    resource = {"resourceType": "Slot", "schedule": {"reference": "Practitioner/p1"}}
    assert reference_rows(resource, param("Slot", "schedule"), BASE) == []
    resource = {"resourceType": "Slot", "schedule": {"reference": "Schedule/s1"}}
    assert reference_rows(resource, param("Slot", "schedule"), BASE) == [
        ("Schedule", "s1", None)]


def test_appointment_participants_are_split_by_target_type() -> None:
    resource = {"resourceType": "Appointment", "participant": [
        {"actor": {"reference": "Patient/pat"}}, {"actor": {"reference": "Practitioner/p1"}}]}
    assert reference_rows(resource, param("Appointment", "patient"), BASE) == [
        ("Patient", "pat", None)]
    assert reference_rows(resource, param("Appointment", "practitioner"), BASE) == [
        ("Practitioner", "p1", None)]
    assert len(reference_rows(resource, param("Appointment", "actor"), BASE)) == 2
