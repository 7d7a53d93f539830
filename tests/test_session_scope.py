"""Cookie sessions belong to the web pages: the FHIR API neither reads nor writes one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flask import session
from flask.sessions import NullSession, SecureCookieSession

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient


def test_web_pages_get_a_cookie_session(app: Flask) -> None:
    with app.test_request_context("/connexion"):
        app.preprocess_request()
        assert isinstance(session._get_current_object(), SecureCookieSession)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Slot", "/fhir/metadata"])
def test_fhir_requests_get_the_null_session(app: Flask, path: str) -> None:
    with app.test_request_context(path):
        current = session._get_current_object()  # type: ignore[attr-defined]
        assert isinstance(current, NullSession)
        assert current.get("csrf") is None
        with pytest.raises(RuntimeError):
            current["csrf"] = "x"  # a write on the API is a bug: it fails loudly


def test_fhir_answers_ignore_the_web_cookie(client: FlaskClient) -> None:
    page = client.get("/connexion")
    assert "session=" in page.headers.get("Set-Cookie", "")  # the CSRF token's session
    answer = client.get("/fhir/metadata")  # the test client sends the cookie back
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    assert "Cookie" not in answer.headers.get("Vary", "")
    assert client.get("/connexion").status_code == 200
