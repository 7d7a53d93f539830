"""The OpenAPI description (generated from the CapabilityStatement and the search registry),
its local Swagger UI at /fhir/docs, and schemathesis run against the real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.search.registry import SUPPORTED_TYPES, params_for

SCHEMATHESIS = Path(sys.executable).parent / "st"
# Checks on every answer: never a 5xx, and every status, media type, header and body as the
# description says. (Allow headers are left out: one Flask rule serves every type, and the
# methods a type refuses answer 405 with an OperationOutcome.)
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")


def document(client: FlaskClient) -> dict[str, Any]:
    answer = client.get("/fhir/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()  # type: ignore[no-any-return]


def test_every_type_and_interaction_of_the_capability_statement_is_described(
        client: FlaskClient) -> None:
    spec = document(client)
    assert spec["openapi"] == "3.0.3" and spec["servers"] == [{"url": "http://localhost/fhir"}]
    paths = spec["paths"]
    capability = client.get("/fhir/metadata").get_json()["rest"][0]
    for entry in capability["resource"]:
        kind = entry["type"]
        codes = {item["code"] for item in entry.get("interaction", [])}
        if "read" in codes:
            assert "get" in paths[f"/{kind}/{{id}}"], kind
        if "search-type" in codes:
            names = {p["name"] for p in paths[f"/{kind}"]["get"]["parameters"]}
            assert set(params_for(kind)) <= names, kind  # the registry's parameters
        assert ("post" in paths.get(f"/{kind}", {})) == ("create" in codes), kind
    for kind in SUPPORTED_TYPES:
        assert f"/{kind}/$validate" in paths
    # AuditEvent is written by the server only: readable, never writable.
    assert set(paths["/AuditEvent"]) == {"get"}
    assert set(paths["/AuditEvent/{id}"]) == {"get", "parameters"}
    assert {"/", "/metadata", "/_history"} <= set(paths)
    slot = {p["name"]: p for p in paths["/Slot"]["get"]["parameters"]}
    assert "Slot:schedule" in slot["_include"]["schema"]["enum"]
    assert "targets: Schedule" in slot["schedule"]["description"]
    assert paths["/Slot/{id}"]["put"]["responses"].keys() == {"200", "201", "default"}
    assert "security" not in spec  # development profile: nothing to declare


def test_production_declares_the_oauth_client_credentials_flow(engine: Any,
                                                                database_url: str) -> None:
    production = create_app(Settings.from_env(
        database_url=database_url, security_profile="production",
        fhir_base_url="https://agenda.example.fr/fhir"), engine=engine)
    spec = document(production.test_client())  # public, like /fhir/metadata
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://agenda.example.fr/oauth/token"
    assert spec["security"] == [{"oauth2": []}]
    assert "client certificate" in spec["info"]["description"]
    assert spec["paths"]["/metadata"]["get"]["security"] == []


def test_swagger_ui_is_served_from_this_server_only(app: Flask, client: FlaskClient) -> None:
    page = client.get("/fhir/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/fhir/docs/") for s in sources), sources
    assert 'data-spec="/fhir/openapi.json"' in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.data) > 100, source
    assert "SwaggerUIBundle" in client.get("/fhir/docs/app/swagger-init.js").get_data(
        as_text=True)
    assert client.get("/fhir/docs/index.html").status_code == 404  # only what the page uses
    assert client.get("/fhir/docs/swagger-ui-bundle.js").data.startswith(b"/*!")


def test_schemathesis_finds_the_running_server_true_to_its_description(
        live_server: str, tmp_path: Path) -> None:
    # Every operation (131 with 11 types), a few generated cases each, a fixed seed: ~4,000
    # requests in about 20 s, against gunicorn on the test database.
    result = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{live_server}/openapi.json", "--checks", CHECKS,
         "--max-examples", "3", "--seed", "20261205", "--phases", "coverage,fuzzing",
         # One worker: schemathesis' threads meet a CPython 3.11 race in ast.parse
         # ("AST constructor recursion depth mismatch").
         "--generation-database", "none", "--no-color", "--workers", "1",
         "--request-timeout", "30"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 100, output[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", output), output[-2000:]
