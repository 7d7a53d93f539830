"""Defences: nesting and size limits, per-client throttling, headers, no internals leaked."""

from __future__ import annotations

from typing import Any

import pytest

from app import create_app
from app.config import Settings
from app.storage.maintenance import truncate_all
from tests.factories import body, practitioner


def test_deeply_nested_json_is_refused(client: Any) -> None:
    nested: Any = {"value": "x"}
    for _ in range(80):
        nested = {"extension": [nested]}
    response = client.post("/fhir/Practitioner", json={**practitioner(), "name": [nested]})
    assert response.status_code == 400
    assert "nested deeper" in body(response)["issue"][0]["diagnostics"]


def test_oversized_body_is_413_outcome(engine: Any, database_url: str) -> None:
    truncate_all(engine)
    app = create_app(Settings.from_env(database_url=database_url, max_request_bytes=2048),
                     engine=engine)
    response = app.test_client().post("/fhir/Practitioner", data=b"{" + b" " * 4096 + b"}",
                                      content_type="application/fhir+json")
    assert response.status_code == 413
    assert body(response)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/fhir/metadata", "/fhir/nowhere/at/all"])
def test_throttling_answers_429_with_retry_after(engine: Any, database_url: str,
                                                 path: str) -> None:
    app = create_app(Settings.from_env(database_url=database_url, rate_limit_per_minute=6),
                     engine=engine)
    client = app.test_client()
    statuses = [client.get(path).status_code for _ in range(6)]
    assert 429 in statuses
    refused = client.get(path)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert body(refused)["issue"][0]["code"] == "throttled"
    # Another client is not affected.
    other = client.get(path, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code != 429


def test_fhir_answers_carry_security_headers(client: Any) -> None:
    response = client.get("/fhir/Practitioner")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_internal_errors_leak_nothing(client: Any, monkeypatch: Any) -> None:
    from app.search import engine as search_engine

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(search_engine, "run_search", broken)
    monkeypatch.setattr("app.fhir.interactions.run_search", broken)
    response = client.get("/fhir/Practitioner")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "Traceback" not in text
    assert body(response)["issue"][0]["diagnostics"] == "Internal server error"
