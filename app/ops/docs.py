"""GET /fhir/openapi.json (generated, app/ops/openapi.py) and /fhir/docs, Swagger UI served
from the swagger-ui-bundle package installed with the server: no CDN, nothing fetched
from elsewhere by the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from app.ops.openapi import openapi_document
from app.state import current_state

docs = Blueprint("docs", __name__, static_folder="static", static_url_path="/fhir/docs/app")
CAPABILITY = "ops_capability_statement"
# The Swagger UI files the page uses (nothing else of the package is served).
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js", "favicon-32x32.png",
                    "favicon-16x16.png"})
# Swagger UI styles its widgets inline and draws icons as data: images.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
          "base-uri 'none'; form-action 'self'")
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fhir-agenda — FHIR API (OpenAPI)</title>
  <link rel="stylesheet" href="/fhir/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/fhir/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-spec="/fhir/openapi.json"></div>
  <script src="/fhir/docs/swagger-ui-bundle.js"></script>
  <script src="/fhir/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/fhir/docs/app/swagger-init.js"></script>
</body>
</html>
"""


def register(app: Flask, capability_statement: Callable[[], dict[str, Any]]) -> None:
    """The composition root hands the CapabilityStatement builder over (app.fhir is the
    HTTP layer's; this package does not import it)."""
    app.extensions[CAPABILITY] = capability_statement
    app.register_blueprint(docs)


@docs.get("/fhir/openapi.json")
def openapi() -> Response:
    statement = current_app.extensions[CAPABILITY]()
    return jsonify(openapi_document(statement, current_state().settings.fhir_base_url))


@docs.get("/fhir/docs")
def page() -> Response:
    response = Response(PAGE, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    return response


@docs.get("/fhir/docs/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(Path(swagger_ui_path), name)
