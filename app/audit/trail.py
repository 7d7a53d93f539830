"""Where audit events are written.

Changes are audited by an interceptor, in the transaction of the change itself: a write
that rolls back leaves no trace of success. Reads of patient and appointment data are
audited in a transaction of their own once the answer is known, and so are refused
requests (401/403, app/auth/refusals.py); invalid input changes nothing, audit included.
"""

from __future__ import annotations

from typing import Any

from app.audit.events import MINOR_FAILURE, SUCCESS, audit_event
from app.state import AppState
from app.storage.repository import Repository, WriteEvent

AUDITED_READS = frozenset({"Patient", "Appointment"})
INTERACTIONS = {"POST": "create", "PUT": "update", "DELETE": "delete"}


class AuditTrail:
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        return None

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type == "AuditEvent" or event.stored is None:
            return
        interaction = "create" if event.previous is None or event.previous.deleted else (
            INTERACTIONS.get(event.method, "update"))
        what = (f"{event.resource_type}/{event.resource_id}/_history/"
                f"{event.stored.version}")
        repo.create("AuditEvent", audit_event(
            interaction, SUCCESS, repo.author or "unknown", repo.client_address, [what]))


def read_entities(body: dict[str, Any] | None) -> list[str]:
    """The patient and appointment resources a read or search answer discloses."""
    if not body:
        return []
    resources = ([e.get("resource") or {} for e in body.get("entry") or []]
                 if body.get("resourceType") == "Bundle" else [body])
    return [f"{r['resourceType']}/{r['id']}/_history/{(r.get('meta') or {}).get('versionId')}"
            for r in resources if r.get("resourceType") in AUDITED_READS and r.get("id")]


def record(state: AppState, interaction: str, agent: str, address: str | None,
           entities: list[str], *, failed: str | None = None) -> None:
    with state.writing(agent, address) as repo:
        repo.create("AuditEvent", audit_event(
            interaction, MINOR_FAILURE if failed else SUCCESS, agent, address, entities,
            failed))
