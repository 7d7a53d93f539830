"""Where audit events are written.

`AuditTrail` is the last interceptor. Changes are audited in the transaction of the change
itself: a write that rolls back leaves no trace of success. Reads and searches that
disclose patient or appointment data are audited through the read hooks, so a REST read, a
Bundle entry's GET and a transaction's search all leave one: inside a write transaction
(Bundles) in that transaction, after a read transaction in one of its own. Refused requests
(401/403) are recorded by app/auth/refusals.py; invalid input changes nothing, audit
included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from app.audit.events import MINOR_FAILURE, SUCCESS, audit_event
from app.config import Settings
from app.db import write_transaction
from app.state import AppState
from app.storage.hooks import Interceptor, ReadEvent, SearchEvent, WriteEvent
from app.storage.repository import Repository, Stored

AUDITED_READS = frozenset({"Patient", "Appointment"})
INTERACTIONS = {"POST": "create", "PUT": "update", "DELETE": "delete"}


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
        repo.create("AuditEvent", audit_event(
            interaction, SUCCESS, repo.author or "unknown", repo.client_address, [what]))

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


def _store(engine: Engine, settings: Settings, interceptors: Sequence[Interceptor],
           author: str | None, address: str | None, event: dict[str, Any]) -> None:
    with write_transaction(engine) as conn:
        Repository(conn, settings, interceptors, author,
                   client_address=address).create("AuditEvent", event)


def record(state: AppState, interaction: str, agent: str, address: str | None,
           entities: list[str], *, failed: str | None = None) -> None:
    with state.writing(agent, address) as repo:
        repo.create("AuditEvent", audit_event(
            interaction, MINOR_FAILURE if failed else SUCCESS, agent, address, entities,
            failed))
