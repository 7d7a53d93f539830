"""parse_query: search keys, modifiers, chains, OR/AND values and result controls."""

from __future__ import annotations

import pytest

from app.outcome import BadRequest
from app.search.query import (
    Criterion,
    UnknownParameter,
    parse_query,
    split_values,
)

RPPS = "urn:oid:1.2.250.1.71.4.2.1"


def only(query_criteria: list[Criterion]) -> Criterion:
    assert len(query_criteria) == 1
    return query_criteria[0]


# -- values ----------------------------------------------------------------------------------

def test_split_values_on_commas() -> None:
    assert split_values("a,b,c") == ["a", "b", "c"]


def test_escaped_comma_is_literal() -> None:
    assert split_values(r"Dupont\, Jean,Martin") == ["Dupont, Jean", "Martin"]


def test_empty_values_are_dropped() -> None:
    assert split_values("a,,b,") == ["a", "b"]
    assert split_values("") == []


def test_comma_values_are_or_within_one_criterion() -> None:
    query = parse_query("Slot", [("status", "free,busy")])
    criterion = only(query.criteria)
    assert criterion.param.name == "status"
    assert criterion.values == ["free", "busy"]


def test_escaped_comma_in_a_query_value() -> None:
    query = parse_query("Practitioner", [("name", r"Dupont\, Jean")])
    assert only(query.criteria).values == ["Dupont, Jean"]


def test_repeated_keys_are_separate_and_criteria() -> None:
    query = parse_query("Slot", [("start", "ge2026-03-02"), ("start", "le2026-03-06")])
    assert [(c.param.name, c.values) for c in query.criteria] == [
        ("start", ["ge2026-03-02"]), ("start", ["le2026-03-06"])]


def test_empty_value_adds_no_criterion() -> None:
    assert parse_query("Slot", [("status", "")]).criteria == []


# -- parameters and modifiers ----------------------------------------------------------------

def test_simple_parameters_carry_their_definition() -> None:
    query = parse_query("Slot", [("identifier", f"{RPPS}|81"), ("start", "2026"),
                                 ("schedule", "Schedule/s1")])
    assert [(c.resource_type, c.param.name, c.param.type, c.modifier, c.values)
            for c in query.criteria] == [
        ("Slot", "identifier", "token", None, [f"{RPPS}|81"]),
        ("Slot", "start", "date", None, ["2026"]),
        ("Slot", "schedule", "reference", None, ["Schedule/s1"]),
    ]


def test_common_parameters() -> None:
    query = parse_query("Slot", [("_id", "a,b"), ("_lastUpdated", "gt2026"),
                                 ("_security", "PUBLIC")])
    assert [(c.param.name, c.param.type) for c in query.criteria] == [
        ("_id", "special"), ("_lastUpdated", "date"), ("_security", "token")]


@pytest.mark.parametrize(("resource_type", "key", "modifier"), [
    ("Practitioner", "identifier:not", "not"),
    ("PractitionerRole", "specialty:text", "text"),
    ("Practitioner", "active:missing", "missing"),
    ("Practitioner", "name:exact", "exact"),
    ("Practitioner", "family:contains", "contains"),
    ("Slot", "start:missing", "missing"),
    ("Schedule", "actor:Practitioner", "Practitioner"),
])
def test_supported_modifiers(resource_type: str, key: str, modifier: str) -> None:
    criterion = only(parse_query(resource_type, [(key, "x")]).criteria)
    assert criterion.modifier == modifier
    assert criterion.param.name == key.split(":")[0]


@pytest.mark.parametrize(("resource_type", "key"), [
    ("Practitioner", "name:not"),
    ("Practitioner", "identifier:exact"),
    ("Slot", "start:text"),
    ("Practitioner", "name:foo"),
    ("Schedule", "actor:Organization"),  # not a possible target of Schedule.actor
])
def test_unsupported_modifiers_are_rejected_even_when_lenient(resource_type: str,
                                                               key: str) -> None:
    with pytest.raises(BadRequest):
        parse_query(resource_type, [(key, "x")])


# -- chains ----------------------------------------------------------------------------------

def test_one_level_chain() -> None:
    criterion = only(parse_query("PractitionerRole",
                                 [("practitioner.identifier", f"{RPPS}|81")]).criteria)
    assert criterion.param.name == "practitioner"
    assert criterion.values == [f"{RPPS}|81"]
    (target,) = criterion.chain
    assert (target.resource_type, target.param.name, target.chain) == (
        "Practitioner", "identifier", [])


def test_chain_without_type_keeps_only_targets_having_the_parameter() -> None:
    # Schedule.actor may point at many types; only some have `name`.
    criterion = only(parse_query("Schedule", [("actor.name", "martin")]).criteria)
    types = {c.resource_type for c in criterion.chain}
    assert {"Practitioner", "Location", "HealthcareService", "Patient"} <= types
    assert "PractitionerRole" not in types  # PractitionerRole has no `name`
    assert all(c.param.name == "name" for c in criterion.chain)


def test_typed_two_level_chain() -> None:
    value = f"{RPPS}|810001,{RPPS}|810002"
    query = parse_query("Slot", [("schedule.actor:Practitioner.identifier", value)])
    criterion = only(query.criteria)
    assert (criterion.resource_type, criterion.param.name, criterion.modifier) == (
        "Slot", "schedule", None)
    assert criterion.values == [f"{RPPS}|810001", f"{RPPS}|810002"]
    (schedule,) = criterion.chain
    assert (schedule.resource_type, schedule.param.name, schedule.modifier) == (
        "Schedule", "actor", "Practitioner")
    (practitioner,) = schedule.chain
    assert (practitioner.resource_type, practitioner.param.name, practitioner.chain) == (
        "Practitioner", "identifier", [])
    assert query.used == [("schedule.actor:Practitioner.identifier", value)]


def test_chain_on_a_non_reference_parameter_is_rejected() -> None:
    with pytest.raises(BadRequest):
        parse_query("Slot", [("status.code", "x")])


def test_chain_to_an_unknown_parameter_is_unknown() -> None:
    query = parse_query("Slot", [("schedule.foo", "x")])
    assert query.criteria == [] and query.ignored == ["schedule.foo"]
    with pytest.raises(UnknownParameter):
        parse_query("Slot", [("schedule.foo", "x")], strict=True)


def test_too_deep_chains_are_rejected() -> None:
    with pytest.raises(BadRequest):
        parse_query("Location", [("partof.partof.partof.partof.name", "x")])


# -- includes --------------------------------------------------------------------------------

def test_include_and_iterate() -> None:
    query = parse_query("Slot", [("_include", "Slot:schedule"),
                                 ("_include:iterate", "Schedule:actor")])
    first, second = query.includes
    assert (first.source_type, first.param and first.param.name, first.target_type,
            first.iterate, first.reverse) == ("Slot", "schedule", None, False, False)
    assert (second.source_type, second.param and second.param.name, second.iterate,
            second.reverse) == ("Schedule", "actor", True, False)
    assert query.criteria == []
    assert query.used == [("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor")]


def test_include_recurse_is_iterate() -> None:
    (include,) = parse_query("Slot", [("_include:recurse", "Schedule:actor")]).includes
    assert include.iterate


def test_include_with_target_type() -> None:
    (include,) = parse_query("Schedule", [("_include", "Schedule:actor:Practitioner")]).includes
    assert (include.param and include.param.name, include.target_type) == (
        "actor", "Practitioner")


def test_revinclude() -> None:
    (include,) = parse_query("Practitioner",
                             [("_revinclude", "PractitionerRole:practitioner")]).includes
    assert (include.source_type, include.param and include.param.name, include.reverse) == (
        "PractitionerRole", "practitioner", True)


def test_include_wildcard() -> None:
    (include,) = parse_query("Slot", [("_include", "*")]).includes
    assert include.param is None and include.source_type == "Slot"


@pytest.mark.parametrize("raw", ["Slot", "Slot:status", "Slot:nope", "Nope:schedule",
                                 "Schedule:actor:Organization", "a:b:c:d"])
def test_bad_includes_are_rejected(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_query("Slot", [("_include", raw)])


def test_bad_include_modifier_is_rejected() -> None:
    with pytest.raises(BadRequest):
        parse_query("Slot", [("_include:foo", "Slot:schedule")])


# -- sort, paging, summary, elements ---------------------------------------------------------

def test_sort_keys() -> None:
    query = parse_query("Slot", [("_sort", "-start,_id,_lastUpdated")])
    assert [(k.name, k.descending) for k in query.sort] == [
        ("start", True), ("_id", False), ("_lastUpdated", False)]
    assert query.sort[0].param is not None and query.sort[0].param.type == "date"
    assert query.sort[1].param is None


@pytest.mark.parametrize("raw", ["nope", "schedule"])
def test_unsortable_keys_are_rejected(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_query("Slot", [("_sort", raw)])


def test_count_and_offset() -> None:
    query = parse_query("Slot", [("_count", "10"), ("_offset", "20")])
    assert (query.count, query.offset) == (10, 20)
    assert parse_query("Slot", []).count is None


@pytest.mark.parametrize(("key", "raw"), [("_count", "ten"), ("_count", "-1"),
                                          ("_offset", "-5"), ("_offset", "x")])
def test_bad_paging_values_are_rejected(key: str, raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_query("Slot", [(key, raw)])


def test_summary_count() -> None:
    assert parse_query("Slot", [("_summary", "count")]).summary_count
    assert not parse_query("Slot", [("_summary", "false")]).summary_count


def test_elements() -> None:
    assert parse_query("Slot", [("_elements", "identifier,start")]).elements == [
        "identifier", "start"]


def test_format_and_pretty_are_ignored_and_not_echoed() -> None:
    query = parse_query("Slot", [("_format", "json"), ("_pretty", "true"), ("status", "free")])
    assert query.used == [("status", "free")]
    assert query.ignored == []


# -- unknown parameters ----------------------------------------------------------------------

def test_unknown_parameter_is_ignored_when_lenient() -> None:
    query = parse_query("Slot", [("foo", "bar"), ("status", "free"), ("bar:exact", "x")])
    assert query.ignored == ["foo", "bar:exact"]
    assert [c.param.name for c in query.criteria] == ["status"]
    assert query.used == [("status", "free")]


def test_unknown_parameter_fails_when_strict() -> None:
    with pytest.raises(UnknownParameter) as raised:
        parse_query("Slot", [("status", "free"), ("foo", "bar")], strict=True)
    assert raised.value.status == 400
    assert "foo" in raised.value.issues[0].diagnostics


def test_parameter_of_another_type_is_unknown() -> None:
    # `family` exists on Practitioner, not on Slot.
    assert parse_query("Slot", [("family", "x")]).ignored == ["family"]
