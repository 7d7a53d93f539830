"""References: well-formed, and local ones pointing at resources this server holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from app.outcome import Issue, Unprocessable
from app.search.extract import parse_reference
from app.search.registry import SUPPORTED_TYPES
from app.storage.repository import Repository

_ID = r"[A-Za-z0-9\-.]{1,64}"  # FHIR id
RELATIVE = re.compile(rf"[A-Z][A-Za-z]+/{_ID}(?:/_history/{_ID})?")
CONTAINED = re.compile(rf"#(?:{_ID})?")  # a bare `#` is the container itself
URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
                 r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
EXPECTED_FORMS = ("Type/id (an id is 1 to 64 letters, digits, '-' or '.'), an absolute "
                  "http(s) URL, #id of a contained resource, or the urn:uuid: of a Bundle entry")


def local_references(node: Any, path: str, *,
                     contained: bool = False) -> Iterator[tuple[str, str]]:
    """(location, reference) for every `reference` string in a resource; those of contained
    resources only when `contained` is set."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "contained" and not contained:
                continue
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from local_references(value, f"{path}.{key}", contained=contained)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from local_references(item, f"{path}[{index}]", contained=contained)


def is_well_formed(reference: str, local_base: str) -> bool:
    """Whether `reference` has one of the forms R4 gives Reference.reference.

    Anything else (`Schedule/../../x`, `Schedule/a b`) would be stored as an external URL
    that nothing can resolve, so it is refused rather than silently kept."""
    if reference.startswith(local_base + "/"):
        reference = reference[len(local_base) + 1:]  # ours: must then be Type/id
    if any(form.fullmatch(reference) for form in (RELATIVE, CONTAINED, URN)):
        return True
    if any(c.isspace() for c in reference):
        return False
    try:
        parts = urlsplit(reference)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def malformed_reference_issues(resource_type: str, resource: dict[str, Any],
                               local_base: str) -> list[Issue]:
    return [Issue("value", f"{location}.reference: '{reference}' is not a valid reference; "
                  f"expected {EXPECTED_FORMS}", expression=[f"{location}.reference"])
            for location, reference in local_references(resource, resource_type, contained=True)
            if not is_well_formed(reference, local_base)]


def missing_reference_issues(repo: Repository, resource_type: str,
                             resource: dict[str, Any]) -> list[Issue]:
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
    return issues


def check_references(repo: Repository, resource_type: str, resource: dict[str, Any]) -> None:
    issues = missing_reference_issues(repo, resource_type, resource)
    if issues:
        raise Unprocessable("The resource refers to resources that do not exist",
                            issues=issues)
