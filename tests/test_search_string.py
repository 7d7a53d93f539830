"""String search through HTTP: starts-with, case/accent folding, :exact, :contains, names and
addresses. FHIR R4 search 3.1.1.4.11 (string)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search_data import found, load, location, organization, practitioner


def address(city: str, postal: str, line: str = "1 rue de la République") -> list[Any]:
    return [{"line": [line], "city": city, "postalCode": postal, "country": "FRA"}]


@pytest.fixture
def people(client: Any) -> Any:
    load(client,
         practitioner("helene", "81001", family="Lefèvre", given=("Hélène",),
                      address=address("Lyon", "69001", "12 montée de la Grande-Côte")),
         practitioner("jp", "81002", family="Dupont", given=("Jean-Pierre",),
                      address=address("Villeurbanne", "69100")),
         practitioner("elise", "81003", family="Martin", given=("Élise", "Marie"),
                      address=address("Saint-Étienne", "42000")),
         practitioner("lenoir", "81004", family="Lenoir", given=("Paul",)),
         practitioner("text-only", "81005", name=[{"text": "Dr Anne Moreau"}]))
    return client


# -- default: starts-with, case- and accent-insensitive --------------------------------------

def test_accent_and_case_insensitive(people: Any) -> None:
    assert found(people, "Practitioner?name=helene") == {"helene"}
    assert found(people, "Practitioner?name=HELENE") == {"helene"}
    assert found(people, "Practitioner?name=Hélène") == {"helene"}
    assert found(people, "Practitioner?name=HÉLÈNE") == {"helene"}


def test_starts_with(people: Any) -> None:
    assert found(people, "Practitioner?name=hél") == {"helene"}
    assert found(people, "Practitioner?name=le") == {"helene", "lenoir"}  # Lefèvre, Lenoir
    assert found(people, "Practitioner?name=ene") == set()  # inside, not at the start


def test_name_matches_any_part(people: Any) -> None:
    assert found(people, "Practitioner?name=dupont") == {"jp"}  # family
    assert found(people, "Practitioner?name=jean") == {"jp"}  # given, start of Jean-Pierre
    assert found(people, "Practitioner?name=marie") == {"elise"}  # second given name
    assert found(people, "Practitioner?name=dr anne") == {"text-only"}  # HumanName.text


def test_family_and_given_only_look_at_their_part(people: Any) -> None:
    assert found(people, "Practitioner?family=lef") == {"helene"}
    assert found(people, "Practitioner?family=helene") == set()
    assert found(people, "Practitioner?given=helene") == {"helene"}
    assert found(people, "Practitioner?given=martin") == set()
    assert found(people, "Practitioner?given=elise") == {"elise"}


def test_or_and_and(people: Any) -> None:
    assert found(people, "Practitioner?family=martin,dupont") == {"elise", "jp"}
    assert found(people, "Practitioner?given=marie&family=martin") == {"elise"}
    assert found(people, "Practitioner?given=marie&family=dupont") == set()


def test_like_wildcards_are_literal(people: Any) -> None:
    assert found(people, "Practitioner?family=d%25t") == set()  # d%t
    assert found(people, "Practitioner?family=_upont") == set()
    assert found(people, "Practitioner?family=%25") == set()


# -- :exact ----------------------------------------------------------------------------------

def test_exact_is_case_and_accent_sensitive_whole_value(people: Any) -> None:
    assert found(people, "Practitioner?name:exact=Hélène") == {"helene"}
    assert found(people, "Practitioner?family:exact=Lefèvre") == {"helene"}
    assert found(people, "Practitioner?name:exact=helene") == set()
    assert found(people, "Practitioner?name:exact=Hélèn") == set()
    assert found(people, "Practitioner?family:exact=LEFÈVRE") == set()


def test_exact_with_or(people: Any) -> None:
    assert found(people, "Practitioner?given:exact=Paul,Marie") == {"lenoir", "elise"}


# -- :contains -------------------------------------------------------------------------------

def test_contains_matches_anywhere(people: Any) -> None:
    assert found(people, "Practitioner?name:contains=ene") == {"helene"}
    assert found(people, "Practitioner?name:contains=LEN") == {"helene", "lenoir"}
    assert found(people, "Practitioner?family:contains=pon") == {"jp"}
    assert found(people, "Practitioner?given:contains=pierre") == {"jp"}
    assert found(people, "Practitioner?family:contains=xyz") == set()


# -- addresses -------------------------------------------------------------------------------

def test_address_city(people: Any) -> None:
    assert found(people, "Practitioner?address-city=lyon") == {"helene"}
    assert found(people, "Practitioner?address-city=saint-etienne") == {"elise"}
    assert found(people, "Practitioner?address-city=ville") == {"jp"}
    assert found(people, "Practitioner?address-city=69001") == set()


def test_address_postalcode(people: Any) -> None:
    assert found(people, "Practitioner?address-postalcode=69") == {"helene", "jp"}
    assert found(people, "Practitioner?address-postalcode=69001") == {"helene"}
    assert found(people, "Practitioner?address-postalcode=42000,69100") == {"elise", "jp"}
    assert found(people, "Practitioner?address-postalcode=lyon") == set()


def test_address_matches_any_part(people: Any) -> None:
    assert found(people, "Practitioner?address=69100") == {"jp"}
    assert found(people, "Practitioner?address=12 montee de la") == {"helene"}
    assert found(people, "Practitioner?address=montee") == set()  # starts with 12
    assert found(people, "Practitioner?address=saint") == {"elise"}
    assert found(people, "Practitioner?address=fra") == {"helene", "jp", "elise"}


# -- other types -----------------------------------------------------------------------------

def test_location_and_organization_names(client: Any) -> None:
    load(client,
         organization("cab", "Cabinet médical des Pentes", alias=["CMP"],
                      address=address("Lyon", "69001")),
         organization("msp", "Maison de santé de la Croix-Rousse",
                      address=address("Lyon", "69004")),
         location("loc", "Cabinet des Pentes", organization_id="cab", alias=["Site Pentes"],
                  address=address("Lyon", "69001")[0]))
    assert found(client, "Organization?name=cabinet medical") == {"cab"}
    assert found(client, "Organization?name=cmp") == {"cab"}  # alias
    assert found(client, "Organization?name=maison de sante") == {"msp"}
    assert found(client, "Organization?address-postalcode=69004") == {"msp"}
    assert found(client, "Location?name=site") == {"loc"}
    assert found(client, "Location?address-city=LYON") == {"loc"}
    assert found(client, "Location?name:exact=Cabinet des Pentes") == {"loc"}


def test_missing(people: Any) -> None:
    assert found(people, "Practitioner?address:missing=true") == {"lenoir", "text-only"}
    assert found(people, "Practitioner?family:missing=true") == {"text-only"}
    assert found(people, "Practitioner?address-city:missing=false") == {"helene", "jp", "elise"}


def test_update_replaces_the_indexed_values(people: Any) -> None:
    load(people, practitioner("jp", "81002", family="Durand", given=("Jean-Pierre",)))
    assert found(people, "Practitioner?family=dupont") == set()
    assert found(people, "Practitioner?family=durand") == {"jp"}
    assert found(people, "Practitioner?address-city=villeurbanne") == set()
