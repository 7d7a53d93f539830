"""Profiles and value sets as read from `profiles/`: each StructureDefinition's differential
as a tree of elements (children and slices), each ValueSet as its allowed codes per system.

What the validator does with them is app/validation/profiles.py's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]
_MAX_LISTED_CODES = 12


@dataclass
class ElementNode:
    """An element of a profile's differential, with its children and slices."""

    name: str
    definition: Json | None = None
    children: dict[str, ElementNode] = field(default_factory=dict)
    slices: dict[str, ElementNode] = field(default_factory=dict)

    def descendant(self, dotted: str) -> ElementNode | None:
        node: ElementNode | None = self
        for name in dotted.split("."):
            node = node.children.get(name) if node else None
        return node


@dataclass(frozen=True)
class Profile:
    url: str
    name: str
    type: str
    root: ElementNode
    document: Json


@dataclass(frozen=True)
class ValueSetCodes:
    """Allowed codes per system; None means every code of the system."""

    url: str
    systems: dict[str, frozenset[str] | None]

    def contains(self, system: str | None, code: str | None) -> bool:
        if system not in self.systems or not code:
            return False
        codes = self.systems[system]
        return codes is None or code in codes

    def has_code(self, code: str | None) -> bool:
        return bool(code) and any(codes is None or code in codes
                                  for codes in self.systems.values())

    def describe(self) -> str:
        codes = sorted(c for cs in self.systems.values() if cs for c in cs)
        if not codes or len(codes) > _MAX_LISTED_CODES:
            return self.url
        return f"{self.url} ({', '.join(codes)})"


def read_profiles(root: Path) -> tuple[dict[str, Profile], dict[str, ValueSetCodes]]:
    """Profiles from `root/*.json` by URL, value sets from `root/valuesets/*.json` by URL."""
    value_sets = {vs.url: vs for vs in map(_value_set, _read_all(root / "valuesets", "ValueSet"))}
    profiles = {}
    for document in _read_all(root, "StructureDefinition"):
        profile = _profile(document)
        _require_value_sets(profile, value_sets)
        profiles[profile.url] = profile
    return profiles, value_sets


def canonical(url: str) -> str:
    """A canonical URL without its `|version`."""
    return url.split("|", 1)[0]


def _read_all(directory: Path, resource_type: str) -> Iterator[Json]:
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("resourceType") == resource_type:
            yield document


def _profile(document: Json) -> Profile:
    root = ElementNode(document["type"])
    for element in document.get("differential", {}).get("element", []):
        node = root
        for segment in element["id"].split(".")[1:]:
            name, _, slice_name = segment.partition(":")
            node = node.children.setdefault(name, ElementNode(name))
            if slice_name:
                node = node.slices.setdefault(slice_name, ElementNode(name))
        node.definition = element
    return Profile(document["url"], document.get("name", document["url"]), document["type"],
                   root, document)


def _value_set(document: Json) -> ValueSetCodes:
    systems: dict[str, frozenset[str] | None] = {}
    for include in document.get("compose", {}).get("include", []):
        concepts = include.get("concept")
        systems[include["system"]] = (frozenset(c["code"] for c in concepts)
                                      if concepts else None)
    return ValueSetCodes(document["url"], systems)


def _require_value_sets(profile: Profile, value_sets: dict[str, ValueSetCodes]) -> None:
    # A required binding we cannot check would silently pass: refuse such a profile set.
    for element in profile.document.get("differential", {}).get("element", []):
        binding = element.get("binding") or {}
        if binding.get("strength") == "required" and (
                canonical(binding.get("valueSet", "")) not in value_sets):
            raise ValueError(f"{profile.url} {element['id']}: value set "
                             f"{binding.get('valueSet')} is not in valuesets/")
