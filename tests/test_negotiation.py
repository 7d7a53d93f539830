"""Content negotiation: Accept, `_format`, `_pretty`, request Content-Type, UTF-8.

Spec: http://hl7.org/fhir/R4/http.html#mime-type and #parameters. The SAS platform sends the
DSTU2-era `application/json+fhir`; it must get JSON back under a JSON content type.
"""

from __future__ import annotations

import json

import pytest

from tests.factories import (
    FHIR_JSON,
    assert_outcome,
    body,
    create,
    practitioner,
    search_ids,
)

JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}


def _get(client, path: str, accept: str | None = None, **query):
    headers = {"Accept": accept} if accept is not None else {}
    return client.get(f"/fhir/{path}", headers=headers, query_string=query)


@pytest.fixture
def doctor(client):
    return create(client, practitioner())


@pytest.mark.parametrize("accept,expected", [
    ("application/fhir+json", "application/fhir+json"),
    ("application/json", "application/json"),
    ("application/json+fhir", "application/json+fhir"),
    ("*/*", "application/fhir+json"),
    ("application/fhir+json; fhirVersion=4.0", "application/fhir+json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None),
    ("application/fhir+xml;q=0.9, application/fhir+json", "application/fhir+json"),
])
def test_accept_json_flavours(client, doctor, accept, expected):
    response = _get(client, f"Practitioner/{doctor['id']}", accept)
    assert response.status_code == 200
    if expected is None:
        assert response.mimetype in JSON_TYPES
    else:
        assert response.mimetype == expected
    assert json.loads(response.data) == doctor


def test_no_accept_header_answers_fhir_json(client, doctor):
    response = client.get(f"/fhir/Practitioner/{doctor['id']}", headers={"Accept": ""})
    assert response.status_code == 200
    assert response.mimetype == FHIR_JSON
    assert body(response) == doctor
    environ_response = client.get(f"/fhir/Practitioner/{doctor['id']}")  # no header at all
    assert environ_response.mimetype == FHIR_JSON


@pytest.mark.parametrize("path", ["Practitioner", "metadata", "_history"])
def test_sas_accept_header_on_bundles_and_metadata(client, doctor, path):
    response = _get(client, path, "application/json+fhir")
    assert response.status_code == 200
    assert response.mimetype == "application/json+fhir"
    assert body(response)["resourceType"] in {"Bundle", "CapabilityStatement"}


def test_sas_accept_header_on_errors(client):
    response = _get(client, "Practitioner/unknown", "application/json+fhir")
    assert response.mimetype in JSON_TYPES
    assert_outcome(response, 404)


def test_sas_content_type_is_accepted_on_create(client):
    response = client.post("/fhir/Practitioner", data=json.dumps(practitioner()),
                           headers={"Content-Type": "application/json+fhir",
                                    "Accept": "application/json+fhir"})
    assert response.status_code == 201
    assert response.mimetype == "application/json+fhir"
    assert search_ids(client, "Practitioner") == [body(response)["id"]]


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json",
                                          "application/fhir+json; charset=utf-8",
                                          "application/json; charset=UTF-8"])
def test_json_content_types_are_accepted(client, content_type):
    response = client.post("/fhir/Practitioner", data=json.dumps(practitioner()),
                           headers={"Content-Type": content_type})
    assert response.status_code == 201


@pytest.mark.parametrize("value,expected", [
    ("json", "application/fhir+json"),
    ("application/fhir+json", "application/fhir+json"),
    ("application/json", "application/json"),
    ("application/json+fhir", "application/json+fhir"),
])
def test_format_parameter_json(client, doctor, value, expected):
    response = _get(client, f"Practitioner/{doctor['id']}", "application/fhir+xml",
                    _format=value)
    assert response.status_code == 200
    assert response.mimetype == expected
    assert body(response) == doctor


def test_format_with_plus_unencoded_in_the_url(client, doctor):
    # `+` in a raw query string decodes to a space; servers should still recognize it.
    response = client.get(f"/fhir/Practitioner/{doctor['id']}?_format=application/fhir+json")
    assert response.status_code == 200
    assert response.mimetype == FHIR_JSON


@pytest.mark.parametrize("value", ["xml", "application/fhir+xml", "text/xml"])
def test_format_xml_is_406(client, doctor, value):
    response = _get(client, f"Practitioner/{doctor['id']}", _format=value)
    assert_outcome(response, 406, "not-supported")


def test_format_overrides_accept_on_search(client, doctor):
    response = _get(client, "Practitioner", "application/fhir+json", _format="xml")
    assert_outcome(response, 406)


def test_pretty_output_is_indented(client, doctor):
    compact = _get(client, f"Practitioner/{doctor['id']}")
    pretty = _get(client, f"Practitioner/{doctor['id']}", _pretty="true")

    assert b"\n" not in compact.data.strip()
    text = pretty.data.decode()
    assert text.count("\n") > 5
    assert '\n  "resourceType"' in text or '\n  "id"' in text
    assert json.loads(pretty.data) == json.loads(compact.data) == doctor


def test_pretty_false_is_compact(client, doctor):
    response = _get(client, f"Practitioner/{doctor['id']}", _pretty="false")
    assert b"\n" not in response.data.strip()


def test_pretty_on_search_bundle(client, doctor):
    response = _get(client, "Practitioner", _pretty="true")
    assert response.status_code == 200
    assert response.data.decode().count("\n") > 5
    assert body(response)["total"] == 1


@pytest.mark.parametrize("path", ["Practitioner", "metadata", "Practitioner/unknown"])
def test_content_type_declares_utf8(client, path):
    response = _get(client, path)
    assert response.mimetype in JSON_TYPES
    assert response.mimetype_params.get("charset", "").lower() == "utf-8"


def test_utf8_accents_round_trip(client):
    resource = practitioner(family="Lefèvre-Dupré", given="Hélène")
    resource["address"] = [{"city": "Saint-Étienne", "line": ["12 rue de l’Église"]}]
    created = create(client, resource)

    response = _get(client, f"Practitioner/{created['id']}")
    assert response.mimetype_params.get("charset", "").lower() == "utf-8"
    assert "Lefèvre-Dupré".encode() in response.data  # raw UTF-8, not only \u escapes
    stored = json.loads(response.data.decode("utf-8"))
    assert stored["name"][0]["family"] == "Lefèvre-Dupré"
    assert stored["name"][0]["given"] == ["Hélène"]
    assert stored["address"][0]["city"] == "Saint-Étienne"
    assert stored["address"][0]["line"] == ["12 rue de l’Église"]


def test_utf8_search_matches_accented_and_unaccented_values(client):
    created = create(client, practitioner(family="Lefèvre", given="Hélène"))
    assert search_ids(client, "Practitioner", "family=Lefèvre") == [created["id"]]
    # R4 string search: matching is case- and accent-insensitive.
    assert search_ids(client, "Practitioner", "family=lefevre") == [created["id"]]
    assert search_ids(client, "Practitioner", "given=HELENE") == [created["id"]]


def test_escaped_unicode_in_request_is_decoded(client):
    raw = json.dumps(practitioner(family="Gaël"), ensure_ascii=True)
    assert "\\u00eb" in raw
    response = client.post("/fhir/Practitioner", data=raw,
                           headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201
    assert body(response)["name"][0]["family"] == "Gaël"
