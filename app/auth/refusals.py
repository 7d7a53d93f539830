"""Refused requests (401/403) leave an AuditEvent with outcome 'minor failure'."""

from __future__ import annotations

import logging

from flask import Request
from sqlalchemy.exc import SQLAlchemyError

from app.audit import trail
from app.outcome import FhirError
from app.state import AppState

log = logging.getLogger(__name__)
INTERACTIONS = {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "update"}


def _what(request: Request) -> tuple[str, list[str]]:
    """The interaction attempted and the resource it named, from the URL."""
    parts = [p for p in request.path.split("/") if p][1:]  # after "fhir"
    if request.method in INTERACTIONS:
        interaction = INTERACTIONS[request.method]
    else:
        interaction = "read" if len(parts) >= 2 and not parts[1].startswith("_") else (
            "search-type")
    entity = "/".join(parts[:2]) if len(parts) >= 2 and not parts[1].startswith("_") else ""
    return interaction, [entity] if entity else []


def record(state: AppState, agent: str, request: Request, error: FhirError) -> None:
    interaction, entities = _what(request)
    description = f"{error.status} {request.method} {request.full_path.rstrip('?')}: {error}"
    try:
        trail.record(state, interaction, agent, request.remote_addr, entities,
                     failed=description)
    except SQLAlchemyError:
        # The refusal stands even when the audit store is unavailable; say so loudly.
        log.exception("Could not audit a refused request: %s", description)
