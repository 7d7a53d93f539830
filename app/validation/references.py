"""References: well-formed, and local ones pointing at resources this server holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


Found = list[tuple[str, str, bool]]  # (location, reference, inside a contained resource)


def local_references(node: Any, path: str) -> Found:
    """Every `reference` string in a resource, with its location and whether a contained
    resource holds it. (Locations are spelt out only for references found: most of a
    resource holds none.)"""
    found: Found = []
    steps: list[Any] = []

    # A plain recursive function filling one list: a generator per nested object costs
    # more than the walk itself.
    def walk(value: Any, contained: bool) -> None:
        if type(value) is dict:
            for key, item in value.items():
                if key == "reference" and type(item) is str:
                    found.append((_location(path, steps), item, contained))
                elif type(item) in _CONTAINERS:
                    steps.append(key)
                    walk(item, contained or key == "contained")
                    steps.pop()
        else:
            for index, item in enumerate(value):
                if type(item) in _CONTAINERS:
                    steps.append(index)
                    walk(item, contained)
                    steps.pop()

    if isinstance(node, (dict, list)):
        walk(node, False)
    return found


_CONTAINERS = (dict, list)  # JSON as parsed: exact types, no subclasses


def _location(path: str, steps: list[Any]) -> str:
    return path + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


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


def malformed_reference_issues(resource_type: str, resource: dict[str, Any], local_base: str,
                               found: Found | None = None) -> list[Issue]:
    """`found`: the resource's references when the caller has walked it already."""
    if found is None:
        found = local_references(resource, resource_type)
    return [Issue("value", f"{location}.reference: '{reference}' is not a valid reference; "
                  f"expected {EXPECTED_FORMS}", expression=[f"{location}.reference"])
            for location, reference, _ in found if not is_well_formed(reference, local_base)]


class MissingReferences(Unprocessable):
    """Local references to resources this server does not hold; `referrers` names, per
    issue, the resource whose reference it is (type, id)."""

    def __init__(self, issues: list[Issue], referrers: list[tuple[str, str]]) -> None:
        super().__init__("The resource refers to resources that do not exist", issues=issues)
        self.referrers = referrers


@dataclass
class Targets:
    """The local references of one resource, to check once its unit has written all."""

    resource_type: str
    resource_id: str
    issues: list[Issue]  # references that can never resolve (a urn outside its Bundle)
    local: list[tuple[str, str, str]]  # (location, target type, target id)


def targets_of(resource_type: str, resource: dict[str, Any], local_base: str,
               references: Found | None = None) -> Targets:
    """The local targets of a resource's own references (a contained resource's references
    resolve inside its container); `references`: as `local_references` found them."""
    if references is None:
        references = local_references(resource, resource_type)
    found = Targets(resource_type, str(resource.get("id")), [], [])
    for location, reference, contained in references:
        if contained:
            continue
        if reference.startswith("urn:"):
            # A urn:uuid only means something inside the Bundle that declares it.
            found.issues.append(Issue("not-found", f"{location}.reference: '{reference}' does"
                                      " not resolve to any resource",
                                      expression=[f"{location}.reference"]))
            continue
        target_type, target_id, url = parse_reference(reference, local_base)
        if url is not None or target_type not in SUPPORTED_TYPES or target_id is None:
            continue  # external or of a type we do not host: nothing to check here
        found.local.append((location, target_type, target_id))
    return found


def unresolved(repo: Repository, pending: list[Targets]) -> list[tuple[Targets, Issue]]:
    """Every reference of these resources that names nothing this server holds, found with
    a query or a few, however many resources and target types."""
    wanted: dict[str, set[str]] = {}
    for targets in pending:
        for _, target_type, target_id in targets.local:
            wanted.setdefault(target_type, set()).add(target_id)
    present = repo.existing(wanted)
    found = []
    for targets in pending:
        found += [(targets, issue) for issue in targets.issues]
        found += [(targets, Issue("not-found", f"{location}.reference: {target_type}/"
                                  f"{target_id} does not exist on this server",
                                  expression=[f"{location}.reference"]))
                  for location, target_type, target_id in targets.local
                  if (target_type, target_id) not in present]
    return found


def missing_reference_issues(repo: Repository, resource_type: str,
                             resource: dict[str, Any]) -> list[Issue]:
    targets = targets_of(resource_type, resource, repo.settings.fhir_base_url)
    return [issue for _, issue in unresolved(repo, [targets])]


def check_references(repo: Repository, resource_type: str, resource: dict[str, Any]) -> None:
    raise_missing(unresolved(repo, [targets_of(resource_type, resource,
                                               repo.settings.fhir_base_url)]))


def raise_missing(missing: list[tuple[Targets, Issue]]) -> None:
    """422 naming every missing target, and whose reference each one is."""
    if missing:
        raise MissingReferences([issue for _, issue in missing],
                                [(t.resource_type, t.resource_id) for t, _ in missing])
