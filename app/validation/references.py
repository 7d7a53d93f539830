"""Referential integrity: local references must point at resources this server holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.fhir.errors import Issue, Unprocessable
from app.search.extract import parse_reference
from app.search.registry import SUPPORTED_TYPES
from app.storage.repository import Repository


def local_references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(location, reference) for every `reference` string in a resource, contained excluded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "contained":
                continue
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from local_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from local_references(item, f"{path}[{index}]")


def check_references(repo: Repository, resource_type: str, resource: dict[str, Any]) -> None:
    issues = []
    for location, reference in local_references(resource, resource_type):
        if reference.startswith("urn:"):
            # A urn:uuid only means something inside the Bundle that declares it.
            issues.append(Issue("not-found", f"{location}.reference: '{reference}' does not "
                                "resolve to any resource", expression=[f"{location}.reference"]))
            continue
        target_type, target_id, url = parse_reference(reference, repo.settings.fhir_base_url)
        if url is not None or target_type not in SUPPORTED_TYPES or target_id is None:
            continue  # external or of a type we do not host: nothing to check here
        if not repo.exists(target_type, target_id):
            issues.append(Issue("not-found",
                                f"{location}.reference: {target_type}/{target_id} does not "
                                "exist on this server", expression=[f"{location}.reference"]))
    if issues:
        raise Unprocessable("The resource refers to resources that do not exist",
                            issues=issues)
