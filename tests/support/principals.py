"""The production security profile with callers handed to the gate by name: a test's
`Authorization: Bearer <name>` authenticates as `principals[name]` (authentication itself
is tested in test_mtls and test_oauth)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask, Request
from sqlalchemy import Engine

from app import create_app
from app.auth import gate
from app.auth.principal import Principal
from app.config import Settings
from tests.conftest import TEST_BASE_URL


def production_app(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch,
                   principals: Mapping[str, Principal]) -> Flask:
    def given(request: Request, _state: Any) -> Principal | None:
        return principals.get(request.headers.get("Authorization", "").removeprefix("Bearer "))

    monkeypatch.setattr(gate, "token_principal", given)
    settings = Settings.from_env(database_url=database_url, fhir_base_url=TEST_BASE_URL,
                                 security_profile="production")
    production = create_app(settings, engine=engine)
    production.config["TESTING"] = True
    return production
