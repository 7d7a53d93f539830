"""Turn parsed criteria into SQL over the index tables.

Each criterion becomes `pk IN (SELECT res_pk FROM search_<type> WHERE res_type=… AND
param=… AND <value match>)`, which the composite indexes on (res_type, param, value) answer
without touching the JSON. Chains nest the same construction on the target type; reverse
chains (`_has`) select the targets of the reference rows of the referring resources that
match (`res_id IN (SELECT target_id FROM search_reference WHERE res_pk IN (…))`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.sql import FromClause

from app.clock import utc_now
from app.identifiers import search_value
from app.outcome import BadRequest
from app.search.alternatives import OR_BATCH, any_of, equal_to_any
from app.search.dates import MAX_DATETIME, MIN_DATETIME, InvalidDate, date_search_value, parse_range
from app.search.extract import normalise, parse_reference
from app.search.query import Criterion, ReverseChain, SortKey
from app.storage.schema import (
    resources,
    search_date,
    search_reference,
    search_string,
    search_token,
)


@dataclass(frozen=True)
class SqlContext:
    default_tz: str
    local_base: str


def resource_filter(table: FromClause, resource_type: str, criteria: list[Criterion],
                    ctx: SqlContext) -> ColumnElement[bool]:
    """WHERE clause selecting the live resources of a type matching every criterion."""
    clauses: list[ColumnElement[bool]] = [table.c.res_type == resource_type,
                                          table.c.deleted.is_(False)]
    clauses.extend(criterion_clause(table, c, ctx) for c in criteria)
    return and_(*clauses)


def criterion_clause(table: FromClause, criterion: Criterion,
                     ctx: SqlContext) -> ColumnElement[bool]:
    param = criterion.param
    if criterion.has is not None:
        return _has(table, criterion.resource_type, criterion.has, ctx)
    if criterion.modifier == "missing":
        return _missing(table, criterion)
    if criterion.chain:
        return _chain(table, criterion, ctx)
    if param.name == "_id":
        return table.c.res_id.in_(criterion.values)
    if param.name == "_lastUpdated":
        return _last_updated(table, criterion, ctx)
    kind = param.index_type
    if kind == "token":
        return _token(table, criterion)
    if kind == "string":
        return _string(table, criterion)
    if kind == "date":
        index = search_date
        return _in_index(table, index, criterion, [_date_match(index.c.low, index.c.high, v, ctx)
                                                   for v in criterion.values])
    if kind == "reference":
        return _reference(table, criterion, ctx)
    raise BadRequest(f"Parameter '{param.name}' cannot be searched")


def _index_select(index: FromClause, criterion: Criterion,
                  match: ColumnElement[bool]) -> Select:
    return select(index.c.res_pk).where(index.c.res_type == criterion.resource_type,
                                        index.c.param == criterion.param.name, match)


def _in_index(table: FromClause, index: FromClause, criterion: Criterion,
              terms: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """The resources with an index row of the criterion matching any of `terms`."""
    return table.c.pk.in_(any_of(terms, lambda match: _index_select(index, criterion, match)))


def _missing(table: FromClause, criterion: Criterion) -> ColumnElement[bool]:
    wanted = (criterion.values or ["true"])[0].lower()
    if wanted not in {"true", "false"}:
        raise BadRequest(":missing takes true or false")
    index = {"token": search_token, "string": search_string, "date": search_date,
             "reference": search_reference}[criterion.param.index_type]
    present = table.c.pk.in_(_index_select(index, criterion, true()))
    return not_(present) if wanted == "true" else present


# -- token -----------------------------------------------------------------------------------

def _system_match(system: str) -> ColumnElement[bool]:
    return search_token.c.system.is_(None) if system == "" else search_token.c.system == system


def _token_terms(values: list[str]) -> list[ColumnElement[bool]]:
    """Token equality, one IN list per system: `code`, `system|code`, `|code`, `system|`."""
    index = search_token
    any_system: list[str] = []
    codes_by_system: dict[str, list[str]] = {}
    whole_systems: list[str] = []
    for value in values:
        if "|" not in value:
            any_system.append(value)
            continue
        system, code = value.split("|", 1)
        code = search_value(system or None, code)
        if code:
            codes_by_system.setdefault(system, []).append(code)
        else:
            whole_systems.append(system)  # `system|`: any code of that system
    terms = [equal_to_any(index.c.code, any_system)] if any_system else []
    terms += [_system_match(system) for system in dict.fromkeys(whole_systems)]
    terms += [and_(equal_to_any(index.c.code, codes), _system_match(system))
              for system, codes in codes_by_system.items()]
    return terms


def _token(table: FromClause, criterion: Criterion) -> ColumnElement[bool]:
    index = search_token
    if criterion.modifier == "text":
        return _in_index(table, index, criterion, [
            index.c.text.like(_starts(normalise(v)), escape="\\") for v in criterion.values])
    matching = _in_index(table, index, criterion, _token_terms(criterion.values))
    return not_(matching) if criterion.modifier == "not" else matching


# -- string ----------------------------------------------------------------------------------

def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _starts(text: str) -> str:
    return _escape_like(text) + "%"


def _string(table: FromClause, criterion: Criterion) -> ColumnElement[bool]:
    index = search_string
    if criterion.modifier == "exact":
        return _in_index(table, index, criterion, [index.c.exact.in_(criterion.values)])
    anywhere = "%" if criterion.modifier == "contains" else ""
    return _in_index(table, index, criterion, [
        index.c.value.like(anywhere + _starts(normalise(v)), escape="\\")
        for v in criterion.values])


# -- date ------------------------------------------------------------------------------------

def _date_match(low, high, value: str, ctx: SqlContext) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    prefix, text = date_search_value(value)
    try:
        p_low, p_high = parse_range(text, ctx.default_tz)
    except InvalidDate as exc:
        raise BadRequest(f"Invalid date search value '{value}': {exc}", code="value") from exc
    if prefix == "eq":
        return and_(low >= p_low, high <= p_high)
    if prefix == "ne":
        return not_(and_(low >= p_low, high <= p_high))
    if prefix == "gt":
        return high > p_high
    if prefix == "lt":
        return low < p_low
    # R4: ge = gt or eq ("range above intersects" or "contained"), which reduces to the OR
    # below; le symmetrically. The leading range condition is implied by it and gives the
    # planner a plain index range to start from.
    if prefix == "ge":
        return and_(high >= p_low, or_(low >= p_low, high > p_high))
    if prefix == "le":
        return and_(low <= p_high, or_(high <= p_high, low < p_low))
    if prefix == "sa":
        return low > p_high
    if prefix == "eb":
        return high < p_low
    # ap: within 10% of the distance between the value and now (at least a day), as HAPI does.
    margin = max(abs(utc_now() - p_low) / 10, timedelta(days=1))
    return and_(low <= _shift(p_high, margin), high >= _shift(p_low, -margin))


def _last_updated(table: FromClause, criterion: Criterion,
                  ctx: SqlContext) -> ColumnElement[bool]:
    def matches(source: FromClause) -> list[ColumnElement[bool]]:
        column = source.c.last_updated
        return [_date_match(column, column, v, ctx) for v in criterion.values]

    if len(criterion.values) <= OR_BATCH:
        return or_(*matches(table))
    other = resources.alias()  # OR batches need a SELECT of their own (app/search/alternatives)
    return table.c.pk.in_(any_of(matches(other), lambda match: select(other.c.pk).where(
        other.c.res_type == criterion.resource_type, match)))


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """moment + delta, kept inside the range datetimes can hold."""
    try:
        return moment + delta
    except OverflowError:
        return MAX_DATETIME if delta > timedelta(0) else MIN_DATETIME


# -- reference -------------------------------------------------------------------------------

def _reference_terms(criterion: Criterion, ctx: SqlContext) -> list[ColumnElement[bool]]:
    """Reference equality, one IN list per target type: `id`, `Type/id`, absolute URLs."""
    index = search_reference
    type_modifier = criterion.modifier if criterion.modifier in criterion.param.targets else None
    local = index.c.url.is_(None)  # references to other servers never match local ids
    bare_ids: list[str] = []
    ids_by_type: dict[str, list[str]] = {}
    urls: list[str] = []
    for value in criterion.values:
        if "/" not in value:
            bare_ids.append(value)
            continue
        target_type, target_id, url = parse_reference(value, ctx.local_base)
        if url is not None:
            urls.append(url)
        elif target_type and target_id and type_modifier in (None, target_type):
            ids_by_type.setdefault(target_type, []).append(target_id)
    terms = []
    if bare_ids:
        match = and_(equal_to_any(index.c.target_id, bare_ids), local)
        terms.append(and_(match, index.c.target_type == type_modifier) if type_modifier
                     else match)
    terms += [and_(index.c.target_type == target_type, equal_to_any(index.c.target_id, ids),
                   local) for target_type, ids in ids_by_type.items()]
    if urls:
        terms.append(equal_to_any(index.c.url, urls))
    return terms


def _reference(table: FromClause, criterion: Criterion, ctx: SqlContext) -> ColumnElement[bool]:
    if criterion.modifier == "identifier":
        raise BadRequest(":identifier on references is not supported; chain .identifier",
                         code="not-supported")
    return _in_index(table, search_reference, criterion, _reference_terms(criterion, ctx))


def _chain(table: FromClause, criterion: Criterion, ctx: SqlContext) -> ColumnElement[bool]:
    index = search_reference
    alternatives = []
    for target in criterion.chain:
        target.values = criterion.values
        target_table = resources.alias()
        targets = select(target_table.c.res_id).where(
            resource_filter(target_table, target.resource_type, [target], ctx))
        alternatives.append(and_(index.c.target_type == target.resource_type,
                                 index.c.target_id.in_(targets), index.c.url.is_(None)))
    return table.c.pk.in_(_index_select(index, criterion, or_(*alternatives)))


def _has(table: FromClause, target_type: str, chain: ReverseChain,
         ctx: SqlContext) -> ColumnElement[bool]:
    """The resources some `chain.source_type` resource meeting every criterion refers to
    through `chain.param` (index: ix_search_reference_res, then the resources' unique key)."""
    index = search_reference
    source = resources.alias()
    sources = select(source.c.pk).where(
        resource_filter(source, chain.source_type, chain.criteria, ctx))
    targets = select(index.c.target_id).where(
        index.c.res_pk.in_(sources), index.c.param == chain.param.name,
        index.c.target_type == target_type, index.c.url.is_(None))
    return table.c.res_id.in_(targets)


# -- sorting ---------------------------------------------------------------------------------

def order_by(table: FromClause, keys: list[SortKey]) -> list[ColumnElement]:
    ordering: list[ColumnElement] = []
    for key in keys:
        if key.param is None:
            column: ColumnElement = table.c.res_id
        elif key.param.name == "_lastUpdated":
            column = table.c.last_updated
        else:
            kind = key.param.index_type
            if kind == "date":
                index = search_date
                value = index.c.high if key.descending else index.c.low
            elif kind == "string":
                index = search_string
                value = index.c.value
            else:
                index = search_token
                value = index.c.code
            aggregate = func.max(value) if key.descending else func.min(value)
            column = (select(aggregate).where(index.c.res_pk == table.c.pk,
                                              index.c.param == key.param.name)
                      .scalar_subquery())
        ordering.append(column.desc() if key.descending else column.asc())
    ordering.append(table.c.pk.asc())  # a total order keeps paging stable
    return ordering
