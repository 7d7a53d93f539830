"""The one place where every write is validated before it is stored."""

from __future__ import annotations

from app.outcome import Unprocessable
from app.search.registry import READ_ONLY_TYPES
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository
from app.validation.references import (
    Targets,
    local_references,
    malformed_reference_issues,
    raise_missing,
    targets_of,
    unresolved,
)
from app.validation.structure import structure_issues

PENDING = "validation:references"
REFERENCES = "validation:reference-strings"


class ValidationInterceptor(Interceptor):
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource is None:
            return
        issues = structure_issues(event.resource_type, event.resource)
        if event.resource_type not in READ_ONLY_TYPES:
            found = local_references(event.resource, event.resource_type)
            event.notes[REFERENCES] = found  # after_write checks their targets
            issues += malformed_reference_issues(event.resource_type, event.resource,
                                                 repo.settings.fhir_base_url, found)
        if issues:
            raise Unprocessable(f"{event.resource_type} is not valid FHIR R4", issues=issues)

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        """Local targets are checked once the unit has written everything: a Bundle's
        entries may refer to entries written after them, and one query per target type
        checks them all."""
        if event.resource is None or event.resource_type in READ_ONLY_TYPES:
            return  # server-written records may name resources deleted since
        pending: list[Targets] = repo.memo(PENDING, list)
        pending.append(targets_of(event.resource_type, event.resource,
                                  repo.settings.fhir_base_url, event.notes.get(REFERENCES)))
        repo.defer(PENDING, lambda: _check(repo, pending))


def _check(repo: Repository, pending: list[Targets]) -> None:
    missing = unresolved(repo, pending)
    pending.clear()
    if repo.closing:
        raise_missing(missing)
    # Midway through a bulk load: what is still missing may come further in the file, and
    # is checked again when the unit finishes.
    pending.extend({id(targets): targets for targets, _ in missing}.values())
    if pending:
        repo.defer_to_finish(PENDING, lambda: _check(repo, pending))
