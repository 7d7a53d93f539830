"""Authorisation of each FHIR interaction for the principal of the current request.

`AccessGuard` is the first interceptor: it checks writes inside their transaction, and
reads, searches and history through the read hooks, so that REST calls, Bundle entries and
conditional interactions are checked at the same points. Outside requests (command line,
worker) there is no principal and nothing is checked.
"""

from __future__ import annotations

from typing import Any

from app.auth import policy
from app.auth.compartment import RESTRICTED_READS, RESTRICTED_WRITES, Compartment
from app.auth.context import current_principal
from app.auth.principal import Principal
from app.auth.scopes import CREATE, READ, SEARCH
from app.outcome import Forbidden
from app.sas.regulators import is_regulator
from app.storage.hooks import HistoryEvent, Interceptor, ReadEvent, SearchEvent, WriteEvent
from app.storage.repository import Repository

Resource = dict[str, Any]
# Written by the server itself inside a client's transaction (audit trail).
INTERNAL_TYPES = frozenset({"AuditEvent"})
# The audit trail spans every agenda: not for a client restricted to some of them.
UNRESTRICTED_ONLY = frozenset({"AuditEvent"})


def _checked() -> Principal | None:
    principal = current_principal.get()
    return None if principal is None or principal.unchecked else principal


def _compartment(repo: Repository, principal: Principal) -> Compartment:
    # One compartment per unit of work: the entries of a Bundle share it.
    return repo.memo(f"compartment:{id(principal)}", lambda: Compartment.of(repo, principal))


def sas_search() -> None:
    principal = _checked()
    if principal is not None:
        policy.require_sas(principal, "The SAS slot search (INT_R01)")


def _visible(repo: Repository, principal: Principal, resource_type: str,
             resource: Resource) -> bool:
    """Whether an included resource may be shown (scopes and compartment)."""
    if not principal.scopes.allows(resource_type, READ) or (
            principal.restricted and resource_type in UNRESTRICTED_ONLY):
        return False
    return not (principal.restricted and resource_type in RESTRICTED_READS
                and not _compartment(repo, principal).holds(resource_type, resource))


class AccessGuard(Interceptor):
    """Refuses what the caller may not do, before anything else looks at it."""

    def before_read(self, repo: Repository, event: ReadEvent) -> None:
        principal = _checked()
        if principal is None:
            return
        kind = event.resource_type
        policy.require(principal, kind, READ)
        if kind in UNRESTRICTED_ONLY:
            policy.require_unrestricted(principal, f"Reading {kind}")
        if principal.restricted and kind in RESTRICTED_READS and not _compartment(
                repo, principal).holds(kind, event.resource):
            raise Forbidden(f"{kind}/{event.stored.resource_id} is outside the agendas "
                            f"{principal.describe()} manages")

    def before_search(self, repo: Repository, event: SearchEvent) -> None:
        """Scopes checked; a restricted client's search narrowed to its compartment."""
        principal = _checked()
        if principal is None:
            return
        kind = event.resource_type
        policy.require(principal, kind, SEARCH)
        if kind in UNRESTRICTED_ONLY:
            policy.require_unrestricted(principal, f"Searching {kind}")
        if principal.restricted and kind in RESTRICTED_READS:
            event.params.extend(_compartment(repo, principal).search_criteria(kind))

    def after_search(self, repo: Repository, event: SearchEvent) -> None:
        principal = _checked()
        if principal is not None:
            event.included = [s for s in event.included
                              if _visible(repo, principal, s.resource_type, s.as_dict())]

    def before_history(self, repo: Repository, event: HistoryEvent) -> None:
        principal = _checked()
        if principal is None:
            return
        # The system history spans every type: it needs read rights on all of them.
        policy.require(principal, event.resource_type or "*", READ)
        policy.require_unrestricted(principal, "History")

    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        principal = _checked()
        if principal is None or event.resource_type in INTERNAL_TYPES:
            return
        previous = event.previous.as_dict() if event.previous and not event.previous.deleted \
            else None
        contents = [c for c in (event.resource, previous) if c is not None]
        # A write the server makes for the caller (a booking's Slot) needs no scope of its
        # own; it still stays inside a restricted caller's agendas (below).
        if event.server_made is None:
            # An update that creates (client-chosen id, or over a deleted resource) is a
            # create.
            action = CREATE if event.method == "PUT" and previous is None else (
                policy.WRITE_ACTIONS[event.method])
            policy.require(principal, event.resource_type, action)
            if event.resource_type == "Practitioner":
                self._regulators(principal, contents)
        if principal.restricted and event.resource_type in RESTRICTED_WRITES:
            compartment = _compartment(repo, principal)
            outside = [c for c in contents if not compartment.holds(event.resource_type, c)]
            new_patient = event.resource_type == "Patient" and previous is None
            if outside and not new_patient:
                raise Forbidden(f"{event.resource_type}/{event.resource_id} is outside the "
                                f"agendas {principal.describe()} manages")

    def before_noop_write(self, repo: Repository, event: WriteEvent) -> None:
        self.before_write(repo, event)

    @staticmethod
    def _regulators(principal: Principal, contents: list[Resource]) -> None:
        # Regulator accounts are SAS's (INT_R02); SAS writes nothing else.
        if any(is_regulator(c) for c in contents):
            policy.require_sas(principal, "Writing a regulator account (INT_R02)")
        elif principal.is_sas:
            raise Forbidden("The SAS platform may only write regulator accounts "
                            "(FrPractitionerRegul)")
