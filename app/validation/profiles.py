"""Validate resources against our own StructureDefinitions in `profiles/` (SAS guide profiles).

This is not a general FHIR validator. Our profiles are compact differentials that restate the
SAS constraints and the FR Core ones that matter (parents are not chased), and this module
applies them: cardinalities, fixed and pattern values, maximum lengths, required bindings
(codes listed in `profiles/valuesets/`, no terminology server), reference targets and
aggregation, slicing by value, pattern (a fixed/pattern value or, lacking one, a required
binding), type or profile discriminator, extensions against their own definition, and the
one kind of FHIRPath invariant the guide uses (`value.matches('…')`). Base-spec structure
is `app.validation.structure`'s job.

Each resource is validated against the profiles in its `meta.profile`, plus those imposed by
its container: a Bundle entry slice (`Bundle.entry:X.resource` typed with a profile) or the
target profile of a reference to a contained resource. Locations are FHIRPath-like, e.g.
`Bundle.entry[3].resource.contained[0].address.line`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from app.config import PROJECT_ROOT
from app.outcome import Issue
from app.validation.profile_documents import (
    ElementNode,
    Profile,
    ValueSetCodes,
    canonical,
    read_profiles,
)

Json = dict[str, Any]
BASE_PROFILE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
# Marks an element constraint taken from the guide's narrative rather than its StructureDefinition.
NARRATIVE_RULE_URL = "urn:fhir-agenda:narrative-rule"
# The FHIRPath invariants we evaluate: `element.matches('regex')`.
MATCHES = re.compile(r"([A-Za-z]+)\.matches\('((?:[^'\\]|\\.)*)'\)")


@dataclass(frozen=True)
class Found:
    """One value of an element in an instance, with its location and JSON key."""

    path: str
    value: Any
    key: str


@dataclass
class _Walk:
    """State of one resource validated against one profile."""

    profile: Profile
    contained: dict[str, Json]
    # Profiles a nested resource must also meet, keyed by id() of its dict (one validate call).
    imposed: dict[int, list[str]]
    issues: list[Issue]

    def error(self, code: str, path: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(code, f"{path}: {message} ({self.profile.name})",
                                 severity=severity, expression=[path]))


class ProfileSet:
    """Loaded profiles and value sets; `validate` returns the issues of a resource."""

    def __init__(self, profiles: dict[str, Profile], value_sets: dict[str, ValueSetCodes]):
        self.profiles = profiles
        self.value_sets = value_sets

    def __contains__(self, url: str) -> bool:
        return canonical(url) in self.profiles

    def get(self, url: str) -> Profile | None:
        return self.profiles.get(canonical(url))

    def validate(self, resource: Json, profiles: Sequence[str] = (), *,
                 unknown_profile: str = "error") -> list[Issue]:
        """All issues (errors, and warnings for near-misses of open slices).

        `profiles` are checked besides those the resource declares; a declared profile this
        set does not hold is reported with the severity `unknown_profile`."""
        issues: list[Issue] = []
        self._validate_resource(resource, str(resource.get("resourceType", "Resource")),
                                list(profiles), {}, issues, container=True,
                                unknown_profile=unknown_profile)
        return issues

    def errors(self, resource: Json) -> list[Issue]:
        return [issue for issue in self.validate(resource) if issue.severity == "error"]

    # -- resources -------------------------------------------------------------------------

    def _validate_resource(self, resource: Json, path: str, imposed_here: list[str],
                           imposed: dict[int, list[str]], issues: list[Issue],
                           container: bool, unknown_profile: str = "error") -> None:
        contained = {str(c.get("id")): c for c in resource.get("contained") or []
                     if isinstance(c, dict)}
        for url in _unique(_declared_profiles(resource) + imposed_here):
            profile = self.get(url)
            if profile is None:
                if not url.startswith(BASE_PROFILE_PREFIX):
                    issues.append(Issue("not-supported", f"{path}: unknown profile {url}",
                                        severity=unknown_profile,
                                        expression=[f"{path}.meta.profile"]))
                continue
            walk = _Walk(profile, contained, imposed, issues)
            if resource.get("resourceType") != profile.type:
                walk.error("invalid", path, f"a {resource.get('resourceType')} cannot conform"
                           f" to a {profile.type} profile")
                continue
            self._check_children(profile.root, [Found(path, resource, "")], walk)
        if container:
            # Contained resources share their container's `#id` space, so check them here once.
            issues.extend(_local_reference_issues(resource, path, contained))
        for index, inner in enumerate(resource.get("contained") or []):
            if isinstance(inner, dict):
                self._validate_resource(inner, f"{path}.contained[{index}]",
                                        imposed.get(id(inner), []), imposed, issues, False,
                                        unknown_profile)
        if resource.get("resourceType") == "Bundle":
            for index, entry in enumerate(resource.get("entry") or []):
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict):
                    self._validate_resource(inner, f"{path}.entry[{index}].resource",
                                            imposed.get(id(inner), []), imposed, issues, True,
                                            unknown_profile)

    # -- elements --------------------------------------------------------------------------

    def _check_children(self, node: ElementNode, owners: list[Found], walk: _Walk) -> None:
        for child in node.children.values():
            for owner in owners:
                if isinstance(owner.value, dict):
                    self._check_element(child, owner, walk)

    def _check_element(self, node: ElementNode, owner: Found, walk: _Walk) -> None:
        values = _values(owner, node.name)
        where = f"{owner.path}.{node.name}"
        self._apply(node, where, values, walk)
        if node.slices:
            self._check_slices(node, where, values, walk)

    def _apply(self, node: ElementNode, where: str, values: list[Found], walk: _Walk,
               label: str = "") -> None:
        definition = node.definition or {}
        _check_cardinality(definition, where, len(values), walk, label)
        for found in values:
            self._check_value(definition, found, walk)
        self._check_children(node, values, walk)

    def _check_value(self, definition: Json, found: Found, walk: _Walk) -> None:
        for key, expected in definition.items():
            if key.startswith("fixed") and found.value != expected:
                walk.error("value", found.path, f"must be exactly {_show(expected)}, "
                           f"found {_show(found.value)}")
            elif key.startswith("pattern") and not _matches(found.value, expected):
                walk.error("value", found.path, f"must match {_show(expected)}, "
                           f"found {_show(found.value)}")
        limit = definition.get("maxLength")
        if isinstance(limit, int) and isinstance(found.value, str) and len(found.value) > limit:
            walk.error("value", found.path, f"longer than {limit} characters")
        for constraint in definition.get("constraint") or []:
            self._check_constraint(constraint, found, walk)
        binding = definition.get("binding") or {}
        if binding.get("strength") == "required":
            self._check_binding(found, self.value_sets[canonical(binding["valueSet"])], walk)
        types = definition.get("type") or []
        path = str(definition.get("path", ""))
        if path.endswith("[x]") and types:
            base = path.rsplit(".", 1)[-1][:-3]
            allowed = [base + t["code"][:1].upper() + t["code"][1:] for t in types]
            if found.key not in allowed:
                walk.error("structure", found.path, f"{found.key} not allowed here "
                           f"(allowed: {', '.join(allowed)})")
        if isinstance(found.value, dict):
            self._check_typed(types, found, walk)

    def _check_constraint(self, constraint: Json, found: Found, walk: _Walk) -> None:
        """`child.matches('regex')` (FHIRPath: no value, no verdict), the only invariant form
        the guide's profiles use; any other expression is reported, never passed silently."""
        expression = str(constraint.get("expression", ""))
        match = MATCHES.fullmatch(expression)
        if match is None:
            walk.error("not-supported", found.path, f"invariant {constraint.get('key')} "
                       f"({expression}) cannot be checked", severity="warning")
            return
        child, pattern = match.group(1), match.group(2).replace("\\'", "'")
        value = found.value.get(child) if isinstance(found.value, dict) else None
        if isinstance(value, str) and not re.fullmatch(pattern, value):
            walk.error("invariant", f"{found.path}.{child}", f"{_show(value)} breaks "
                       f"{constraint.get('key')}: {constraint.get('human', expression)}")

    def _check_typed(self, types: list[Json], found: Found, walk: _Walk) -> None:
        if "resourceType" in found.value:
            # A resource typed with a profile (Bundle entry slice): validated as a nested one.
            profiles = [p for t in types if t.get("code") == found.value["resourceType"]
                        for p in t.get("profile", [])]
            walk.imposed.setdefault(id(found.value), []).extend(profiles)
        elif any(t.get("code") == "Reference" for t in types):
            self._check_reference(types, found, walk)
        else:
            # A datatype with a profile of ours (an extension): its own constraints apply.
            for url in (p for t in types if t.get("code") == "Extension"
                        for p in t.get("profile", [])):
                profile = self.get(url)
                if profile is not None and profile.type == "Extension":
                    inner = _Walk(profile, walk.contained, walk.imposed, walk.issues)
                    self._check_children(profile.root, [found], inner)

    def _check_binding(self, found: Found, value_set: ValueSetCodes, walk: _Walk) -> None:
        value = found.value
        if isinstance(value, str):
            ok = value_set.has_code(value)
        elif isinstance(value, dict) and "code" not in value and "system" not in value:
            codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
            if not codings:
                walk.error("code-invalid", found.path,
                           f"a code from {value_set.describe()} is required")
                return
            ok = any(value_set.contains(c.get("system"), c.get("code")) for c in codings)
        elif isinstance(value, dict):
            ok = value_set.contains(value.get("system"), value.get("code"))
        else:
            ok = False
        if not ok:
            walk.error("code-invalid", found.path,
                       f"{_show(value)} is not in the required value set {value_set.describe()}")

    def _check_reference(self, types: list[Json], found: Found, walk: _Walk) -> None:
        reference = found.value.get("reference")
        if not isinstance(reference, str):
            return  # logical reference (identifier only): nothing to resolve
        targets = [p for t in types for p in t.get("targetProfile", [])]
        aggregation = {a for t in types for a in t.get("aggregation", [])}
        local = reference.startswith("#")
        target = walk.contained.get(reference[1:]) if local else None
        if aggregation and local and "contained" not in aggregation:
            walk.error("invalid", f"{found.path}.reference", "must not reference a contained "
                       f"resource (aggregation: {', '.join(sorted(aggregation))})")
        elif aggregation == {"contained"} and not local:
            walk.error("invalid", f"{found.path}.reference",
                       "must reference a contained resource (#id)")
        if local and target is None:
            return  # an unresolved local reference is reported once by _local_reference_issues
        target_type = target.get("resourceType") if target else _reference_type(reference)
        allowed = {self._profile_type(url) for url in targets}
        if targets and target_type and None not in allowed and target_type not in allowed:
            walk.error("invalid", f"{found.path}.reference", f"{target_type} is not an allowed "
                       f"target (allowed: {', '.join(sorted(t for t in allowed if t))})")
        if target is not None:
            known = [url for url in targets if (p := self.get(url)) and p.type == target_type]
            walk.imposed.setdefault(id(target), []).extend(known)

    def _profile_type(self, url: str) -> str | None:
        profile = self.get(url)
        if profile is not None:
            return profile.type
        name = canonical(url).rsplit("/", 1)[-1]
        if url.startswith(BASE_PROFILE_PREFIX):
            return name
        # FR Core names its profiles Fr<Type>; anything else is unknown (accept any type).
        candidate = name[2:] if name.startswith("Fr") else ""
        return candidate if candidate and _is_resource_type(candidate) else None

    # -- slicing ---------------------------------------------------------------------------

    def _check_slices(self, node: ElementNode, where: str, values: list[Found],
                      walk: _Walk) -> None:
        members: dict[str, list[Found]] = {name: [] for name in node.slices}
        unmatched: list[Found] = []
        for found in values:
            name = next((n for n, s in node.slices.items()
                         if self._in_slice(node, s, found)), None)
            (members[name] if name else unmatched).append(found)
        for name, slice_node in node.slices.items():
            self._apply(slice_node, where, members[name], walk, f"slice {name}: ")
        for found in unmatched:
            self._hint_near_miss(node, found, walk)

    def _hint_near_miss(self, node: ElementNode, found: Found, walk: _Walk) -> None:
        # Open slicing leaves non-members free, but a code of a slice's value set under another
        # system is almost always a mistake: say so without failing the resource.
        for name, slice_node in node.slices.items():
            binding = (slice_node.definition or {}).get("binding") or {}
            value_set = self.value_sets.get(canonical(binding.get("valueSet", "")))
            codes = [c for c in _codes(found.value) if value_set and value_set.has_code(c)]
            if codes:
                walk.error("code-invalid", found.path, f"code {codes[0]} belongs to slice {name}"
                           f" but does not match its discriminator; not checked as {name}",
                           severity="warning")
                return


    def _in_slice(self, node: ElementNode, slice_node: ElementNode, found: Found) -> bool:
        definition = node.definition or {}
        if node.name.endswith("[x]"):
            # Type slices of a choice element are named after the JSON key.
            return found.key == (slice_node.definition or {}).get("sliceName")
        for discriminator in (definition.get("slicing") or {}).get("discriminator", []):
            path = discriminator["path"]
            target = slice_node if path == "$this" else slice_node.descendant(path)
            expected = (target.definition or {}) if target else {}
            values = _at_path(found.value, path)
            kind = discriminator["type"]
            if kind == "type":
                wanted = {t["code"] for t in expected.get("type", [])}
                if not wanted & {v.get("resourceType") for v in values if isinstance(v, dict)}:
                    return False
            elif kind == "profile":
                if not any(self._conforms(v, expected) for v in values):
                    return False
            elif not self._discriminated(slice_node, path, expected, values):
                return False
        return True

    def _discriminated(self, slice_node: ElementNode, path: str, expected: Json,
                       values: list[Any]) -> bool:
        """Value/pattern discriminators: the slice's fixed or pattern value at `path`, else
        (FHIR allows it) its required binding there, else, for an extension's `url`, the
        canonical of the extension the slice is typed with."""
        wanted = [v for k, v in expected.items() if k.startswith(("fixed", "pattern"))]
        if wanted:
            return any(_matches(v, wanted[0]) for v in values)
        binding = expected.get("binding") or {}
        if binding.get("strength") == "required":
            value_set = self.value_sets[canonical(binding["valueSet"])]
            return any(_codings_in(v, value_set) for v in values)
        if path == "url":
            urls = {p for t in (slice_node.definition or {}).get("type", [])
                    if t.get("code") == "Extension" for p in t.get("profile", [])}
            return bool(urls) and any(v in urls for v in values)
        return False

    def _conforms(self, value: Any, expected: Json) -> bool:
        """A resource of the slice's type that claims one of its profiles or meets one."""
        if not isinstance(value, dict):
            return False
        for kind in expected.get("type", []):
            if kind.get("code") != value.get("resourceType"):
                continue
            declared = set(_declared_profiles(value))
            for url in kind.get("profile", []):
                if canonical(url) in declared or (url in self and not any(
                        i.severity == "error" for i in self.validate(value, [url]))):
                    return True
        return False


# -- loading ---------------------------------------------------------------------------------


def load_profiles(directory: Path | str) -> ProfileSet:
    """Profiles from `directory/*.json`, value sets from `directory/valuesets/*.json` (cached)."""
    return _load_profiles(str(Path(directory).resolve()))


def default_profiles() -> ProfileSet:
    """The repository's own `profiles/` directory."""
    return load_profiles(PROJECT_ROOT / "profiles")


@lru_cache(maxsize=8)
def _load_profiles(directory: str) -> ProfileSet:
    return ProfileSet(*read_profiles(Path(directory)))


# -- instance helpers ------------------------------------------------------------------------


def _values(owner: Found, name: str) -> list[Found]:
    """The values of element `name` in `owner`, each with its FHIRPath-like location."""
    data = owner.value
    if name.endswith("[x]"):
        base = name[:-3]
        keys = [k for k in data if k.startswith(base) and k[len(base):][:1].isupper()]
    else:
        keys = [name] if name in data else []
    found = []
    for key in keys:
        raw = data[key]
        if isinstance(raw, list):
            found += [Found(f"{owner.path}.{key}[{i}]", item, key) for i, item in enumerate(raw)]
        elif raw is not None:
            found.append(Found(f"{owner.path}.{key}", raw, key))
    return found


def _check_cardinality(definition: Json, where: str, count: int, walk: _Walk,
                       label: str) -> None:
    low = definition.get("min")
    high = definition.get("max")
    if isinstance(low, int) and count < low:
        walk.error("required", where, f"{label}minimum cardinality {low} not met "
                   f"({count} found)")
    if high not in (None, "*") and count > int(high):
        walk.error("structure", where, f"{label}maximum cardinality {high} exceeded "
                   f"({count} found)")


def _at_path(value: Any, path: str) -> list[Any]:
    """Values at a dotted path, flattening lists (FHIRPath collection semantics)."""
    current = value if isinstance(value, list) else [value]
    if path == "$this":
        return current
    for name in path.split("."):
        step: list[Any] = []
        for item in current:
            inner = item.get(name) if isinstance(item, dict) else None
            step += inner if isinstance(inner, list) else [] if inner is None else [inner]
        current = step
    return current


def _matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every pattern property present; lists match element-wise."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(value.get(k), p)
                                               for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_matches(v, p) for v in value)
                                               for p in pattern)
    return value == pattern


def _codings_in(value: Any, value_set: ValueSetCodes) -> bool:
    """A Coding, a CodeableConcept with a coding, or a code, in the value set."""
    if isinstance(value, str):
        return value_set.has_code(value)
    if not isinstance(value, dict):
        return False
    codings = value.get("coding") if "coding" in value else [value]
    return any(isinstance(c, dict) and value_set.contains(c.get("system"), c.get("code"))
               for c in codings or [])


def _codes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [c["code"] for c in value["coding"] if isinstance(c, dict) and c.get("code")]
    return [value["code"]] if value.get("code") else []


def _local_reference_issues(resource: Json, path: str, contained: dict[str, Json]) -> list[Issue]:
    """`#id` references anywhere in the resource (and its contained ones) must resolve."""
    issues: list[Issue] = []

    def visit(value: Any, where: str, top: bool) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{where}[{index}]", False)
            return
        if not isinstance(value, dict) or ("resourceType" in value and not top):
            return  # Bundle entries are containers of their own
        reference = value.get("reference")
        if isinstance(reference, str) and reference.startswith("#") and len(reference) > 1 \
                and reference[1:] not in contained:
            issues.append(Issue("not-found", f"{where}.reference: {reference} does not resolve "
                                "to a contained resource", expression=[f"{where}.reference"]))
        for key, inner in value.items():
            if key == "contained":
                for index, item in enumerate(inner or []):
                    if isinstance(item, dict):
                        visit(item, f"{where}.contained[{index}]", True)
            else:
                visit(inner, f"{where}.{key}", False)

    visit(resource, path, True)
    return issues


def _declared_profiles(resource: Json) -> list[str]:
    meta = resource.get("meta") or {}
    return [canonical(url) for url in meta.get("profile") or [] if isinstance(url, str)]


def _reference_type(reference: str) -> str | None:
    """`Practitioner/1`, `https://x/fhir/Practitioner/1/_history/2` -> Practitioner."""
    parts = [p for p in reference.split("?")[0].split("/") if p]
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2 and _is_resource_type(parts[-2]):
        return parts[-2]
    return None


@lru_cache(maxsize=256)
def _is_resource_type(name: str) -> bool:
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        return False
    return "meta" in model.model_fields  # resources have meta, datatypes do not


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
