"""Where audit events are written.

`AuditTrail` is the last interceptor. Changes are audited in the transaction of the change
itself: a write that rolls back leaves no trace of success. One AuditEvent per interaction
(create, update, delete) of a unit of work names, as one entity each, every version that
interaction stored (who: the agent; what: the versions; when: `recorded`, each version's
own `lastUpdated`): a REST write leaves one event with one entity, a transaction Bundle of a
thousand Slots one event with a thousand entities (at most `MAX_ENTITIES` per event).
Reads and searches that disclose patient or appointment data are audited through the read
hooks, so a REST read, a Bundle entry's GET and a transaction's search all leave one:
inside a write transaction (Bundles) in that transaction, after a read transaction in one of
its own. Refused requests (401/403) are recorded by app/auth/refusals.py; invalid input
changes nothing, audit included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from app.audit.events import MINOR_FAILURE, SUCCESS, audit_event, authentication_event
from app.config import Settings
from app.db import write_transaction
from app.state import AppState
from app.storage.hooks import Interceptor, ReadEvent, SearchEvent, WriteEvent
from app.storage.repository import Repository, Stored

AUDITED_READS = frozenset({"Patient", "RelatedPerson", "Appointment"})
INTERACTIONS = {"POST": "create", "PUT": "update", "DELETE": "delete"}
MAX_ENTITIES = 1000  # per AuditEvent: a bulk load leaves one event per thousand versions
CHANGES = "audit:changes"


def disclosed(shown: list[Stored]) -> list[str]:
    """The patient and appointment versions among resources shown to a client."""
    return [f"{s.resource_type}/{s.resource_id}/_history/{s.version}" for s in shown
            if s.resource_type in AUDITED_READS]


class AuditTrail(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type == "AuditEvent" or event.stored is None:
            return
        interaction = "create" if event.previous is None or event.previous.deleted else (
            INTERACTIONS.get(event.method, "update"))
        what = (f"{event.resource_type}/{event.resource_id}/_history/"
                f"{event.stored.version}")
        changes: dict[str, list[tuple[str, str | None]]] = repo.memo(CHANGES, dict)
        changes.setdefault(interaction, []).append((what, event.server_made))
        repo.defer(CHANGES, lambda: _record_changes(repo, changes))

    def after_read(self, repo: Repository, event: ReadEvent) -> None:
        self._disclosure(repo, "read", disclosed([event.stored]))

    def after_search(self, repo: Repository, event: SearchEvent) -> None:
        self._disclosure(repo, "search-type", disclosed([*event.matches, *event.included]))

    @staticmethod
    def _disclosure(repo: Repository, interaction: str, entities: list[str]) -> None:
        if not entities:
            return
        event = audit_event(interaction, SUCCESS, repo.author or "unknown",
                            repo.client_address, entities)
        if repo.writable:
            repo.create("AuditEvent", event)
            return
        # A read transaction cannot write: the event follows in a transaction of its own.
        engine, settings, interceptors = repo.conn.engine, repo.settings, repo.interceptors
        author, address = repo.author, repo.client_address
        repo.after_transaction.append(lambda: _store(engine, settings, interceptors, author,
                                                     address, event))


def _record_changes(repo: Repository, changes: dict[str, list[tuple[str, str | None]]]) -> None:
    """One AuditEvent per interaction, one entity per version (a write the server made on
    the caller's behalf, e.g. a booking rule's, says so in its entity's description)."""
    collected = dict(changes)
    changes.clear()
    for interaction, versions in collected.items():
        for start in range(0, len(versions), MAX_ENTITIES):
            chunk = versions[start:start + MAX_ENTITIES]
            event = audit_event(interaction, SUCCESS, repo.author or "unknown",
                                repo.client_address, [what for what, _ in chunk])
            for entity, (_, why) in zip(event["entity"], chunk, strict=True):
                if why:
                    entity["description"] = why
            repo.create("AuditEvent", event)


def _store(engine: Engine, settings: Settings, interceptors: Sequence[Interceptor],
           author: str | None, address: str | None, event: dict[str, Any]) -> None:
    with write_transaction(engine) as conn:
        repo = Repository(conn, settings, interceptors, author, client_address=address)
        repo.create("AuditEvent", event)
        repo.finish()


def record(state: AppState, interaction: str, agent: str, address: str | None,
           entities: list[str], *, failed: str | None = None) -> None:
    with state.writing(agent, address) as repo:
        repo.create("AuditEvent", audit_event(
            interaction, MINOR_FAILURE if failed else SUCCESS, agent, address, entities,
            failed))


def record_authentication(state: AppState, subtype: str, agent: str, address: str | None,
                          entities: list[str], *, failed: str | None = None,
                          description: str | None = None) -> None:
    """A sign-in (refused when `failed` says why) or sign-out on the web pages."""
    with state.writing(agent, address) as repo:
        repo.create("AuditEvent", authentication_event(
            subtype, MINOR_FAILURE if failed else SUCCESS, agent, address, entities,
            failed or description))
