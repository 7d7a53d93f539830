"""Token search through HTTP: system|code forms, :not, :text, :missing, booleans, _security, _id.

FHIR R4 search, 3.1.1.4.10 (token) and 3.1.1.5 (modifiers).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.search_data import (
    LOCAL,
    RPPS,
    SPECIALITE,
    TYPE_CRENEAU,
    body,
    found,
    get,
    load,
    practitioner,
    role,
    schedule,
    slot,
)

OTHER = "urn:example:other-registry"


@pytest.fixture
def practitioners(client: Any) -> Any:
    """p1 RPPS 81001 (active, female); p2 RPPS 81002 + a local id (inactive, male);
    p3 81001 in another system (no active, no gender); p4 81001 without system."""
    load(client,
         practitioner("p1", "81001", active=True, gender="female",
                      telecom=[{"system": "phone", "value": "+33465710111"}]),
         practitioner("p2", "81002", active=False, gender="male",
                      identifier=[{"system": LOCAL, "value": "691234567",
                                   "type": {"text": "Numéro annuaire local"}}]),
         practitioner("p3", identifier=[{"system": OTHER, "value": "81001"}]),
         practitioner("p4", identifier=[{"value": "81001"}], active=True))
    return client


# -- system|code forms -----------------------------------------------------------------------

def test_system_and_code(practitioners: Any) -> None:
    assert found(practitioners, f"Practitioner?identifier={RPPS}|81001") == {"p1"}
    assert found(practitioners, f"Practitioner?identifier={OTHER}|81001") == {"p3"}


def test_code_alone_matches_any_system_or_none(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?identifier=81001") == {"p1", "p3", "p4"}


def test_empty_system_matches_only_values_without_system(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?identifier=|81001") == {"p4"}


def test_system_alone_matches_any_code_of_that_system(practitioners: Any) -> None:
    assert found(practitioners, f"Practitioner?identifier={RPPS}|") == {"p1", "p2"}
    assert found(practitioners, f"Practitioner?identifier={LOCAL}|") == {"p2"}


def test_no_match(practitioners: Any) -> None:
    assert found(practitioners, f"Practitioner?identifier={RPPS}|99999") == set()
    assert found(practitioners, f"Practitioner?identifier={LOCAL}|81001") == set()


def test_comma_is_or(practitioners: Any) -> None:
    assert found(practitioners,
                 f"Practitioner?identifier={RPPS}|81002,{OTHER}|81001") == {"p2", "p3"}


def test_repetition_is_and(practitioners: Any) -> None:
    assert found(practitioners,
                 f"Practitioner?identifier={RPPS}|81002&identifier={LOCAL}|691234567") == {"p2"}
    assert found(practitioners,
                 f"Practitioner?identifier={RPPS}|81001&identifier={LOCAL}|691234567") == set()


def test_code_token_on_contact_point(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?telecom=%2B33465710111") == {"p1"}


# -- :not ------------------------------------------------------------------------------------

def test_not_excludes_matches_and_keeps_resources_without_the_element(
        practitioners: Any) -> None:
    # R4: ":not … includes resources that have no value for the parameter".
    assert found(practitioners, "Practitioner?gender:not=male") == {"p1", "p3", "p4"}
    assert found(practitioners, f"Practitioner?identifier:not={RPPS}|81001") == {
        "p2", "p3", "p4"}


def test_not_with_a_system(practitioners: Any) -> None:
    assert found(practitioners, f"Practitioner?identifier:not={RPPS}|") == {"p3", "p4"}


# -- :text -----------------------------------------------------------------------------------

@pytest.fixture
def roles(client: Any) -> Any:
    load(client,
         practitioner("p1", "81001"),
         role("r-gp", "p1", specialty=[{"coding": [{"system": SPECIALITE, "code": "SM54",
                                                    "display": "Médecine générale"}]}]),
         role("r-ped", "p1", specialty=[{"coding": [{"system": SPECIALITE, "code": "SM40",
                                                     "display": "Pédiatrie"}]}]),
         role("r-text", "p1", specialty=[{"coding": [{"system": SPECIALITE, "code": "SM54",
                                                      "display": "Médecine générale"}],
                                          "text": "Généraliste"}]))
    return client


def test_text_matches_coding_display_case_and_accent_insensitively(roles: Any) -> None:
    assert found(roles, "PractitionerRole?specialty:text=medecine") == {"r-gp", "r-text"}
    assert found(roles, "PractitionerRole?specialty:text=MÉDECINE gén") == {"r-gp", "r-text"}
    assert found(roles, "PractitionerRole?specialty:text=pediatrie") == {"r-ped"}
    assert found(roles, "PractitionerRole?specialty:text=chirurgie") == set()


def test_text_does_not_match_codes(roles: Any) -> None:
    assert found(roles, "PractitionerRole?specialty:text=SM54") == set()


def test_text_matches_codeable_concept_text(roles: Any) -> None:
    # R4 :text "the search parameter is tested against the text/display portion": that is
    # CodeableConcept.text as well as Coding.display.
    assert found(roles, "PractitionerRole?specialty:text=generaliste") == {"r-text"}


def test_text_matches_identifier_type_text(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?identifier:text=numero annuaire") == {"p2"}


def test_plain_code_search_on_codeable_concept(roles: Any) -> None:
    assert found(roles, f"PractitionerRole?specialty={SPECIALITE}|SM54") == {"r-gp", "r-text"}
    assert found(roles, "PractitionerRole?specialty=SM40") == {"r-ped"}


# -- :missing and booleans -------------------------------------------------------------------

def test_missing_true_and_false(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?gender:missing=true") == {"p3", "p4"}
    assert found(practitioners, "Practitioner?gender:missing=false") == {"p1", "p2"}
    assert found(practitioners, "Practitioner?active:missing=true") == {"p3"}


def test_missing_takes_only_true_or_false(practitioners: Any) -> None:
    response = get(practitioners, "Practitioner?gender:missing=maybe")
    assert response.status_code == 400
    assert body(response)["resourceType"] == "OperationOutcome"


def test_boolean_values(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?active=true") == {"p1", "p4"}
    assert found(practitioners, "Practitioner?active=false") == {"p2"}
    assert found(practitioners, "Practitioner?active:not=true") == {"p2", "p3"}


def test_code_value(practitioners: Any) -> None:
    assert found(practitioners, "Practitioner?gender=female") == {"p1"}
    assert found(practitioners, "Practitioner?gender=female,male") == {"p1", "p2"}


# -- _security, status, _id ------------------------------------------------------------------

@pytest.fixture
def slots(client: Any) -> Any:
    load(client,
         practitioner("p1", "81001"),
         schedule("s1", "Practitioner/p1"),
         slot("public", "s1", "2026-03-02T09:00:00+01:00", security=("PUBLIC",)),
         slot("both", "s1", "2026-03-02T09:15:00+01:00", security=("PUBLIC", "PRO")),
         slot("pro", "s1", "2026-03-02T09:30:00+01:00", status="busy", security=("PRO",)),
         slot("none", "s1", "2026-03-02T09:45:00+01:00", status="busy-unavailable"))
    return client


def test_security_labels(slots: Any) -> None:
    assert found(slots, f"Slot?_security={TYPE_CRENEAU}|PUBLIC") == {"public", "both"}
    assert found(slots, "Slot?_security=PRO") == {"both", "pro"}
    assert found(slots, f"Slot?_security={TYPE_CRENEAU}|") == {"public", "both", "pro"}
    assert found(slots, f"Slot?_security:not={TYPE_CRENEAU}|PRO") == {"public", "none"}
    assert found(slots, "Slot?_security:missing=true") == {"none"}


def test_security_and_status_together(slots: Any) -> None:
    assert found(slots, f"Slot?_security={TYPE_CRENEAU}|PRO&status=free") == {"both"}


def test_status_codes(slots: Any) -> None:
    assert found(slots, "Slot?status=free") == {"public", "both"}
    assert found(slots, "Slot?status=busy,busy-unavailable") == {"pro", "none"}
    assert found(slots, "Slot?status=busy") == {"pro"}  # not a prefix match


def test_id(slots: Any) -> None:
    assert found(slots, "Slot?_id=pro") == {"pro"}
    assert found(slots, "Slot?_id=pro,none,unknown") == {"pro", "none"}
    assert found(slots, "Slot?_id=unknown") == set()
    assert found(slots, "Slot?_id=pro&status=free") == set()


def test_id_of_another_type_does_not_match(slots: Any) -> None:
    assert found(slots, "Schedule?_id=pro") == set()
    assert found(slots, "Schedule?_id=s1") == {"s1"}
