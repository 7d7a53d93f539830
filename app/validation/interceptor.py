"""The one place where every write is validated before it is stored."""

from __future__ import annotations

from app.outcome import Unprocessable
from app.search.registry import READ_ONLY_TYPES
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository
from app.validation.references import check_references, malformed_reference_issues
from app.validation.structure import structure_issues


class ValidationInterceptor(Interceptor):
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource is None:
            return
        issues = structure_issues(event.resource_type, event.resource)
        if event.resource_type not in READ_ONLY_TYPES:
            issues += malformed_reference_issues(event.resource_type, event.resource,
                                                 repo.settings.fhir_base_url)
        if issues:
            raise Unprocessable(f"{event.resource_type} is not valid FHIR R4", issues=issues)
        if event.resource_type in READ_ONLY_TYPES:
            return  # server-written records may name resources deleted since
        if repo.deferred_checks is not None:
            repo.deferred_checks.append((event.resource_type, event.resource))
        else:
            check_references(repo, event.resource_type, event.resource)


def run_deferred_checks(repo: Repository) -> None:
    """Check the references of every resource written since deferral began."""
    pending, repo.deferred_checks = repo.deferred_checks or [], None
    for resource_type, resource in pending:
        check_references(repo, resource_type, resource)
