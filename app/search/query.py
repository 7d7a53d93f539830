"""Parse a search query string into typed criteria and result controls.

`schedule.actor:Practitioner.identifier=sys|a,sys|b` becomes one Criterion whose `chain`
leads from Slot.schedule to Schedule.actor (restricted to Practitioner) to
Practitioner.identifier, with two OR'ed values. Repeated keys are AND'ed criteria.

`_has:Slot:schedule:status=free` (reverse chaining) becomes one Criterion whose `has` holds
the criteria a referring Slot must meet. Every `_has` with the same `Type:param` path is
gathered into that one Criterion: its criteria are met by one and the same referring
resource (Schedules having *a* Slot that is free *and* in the window), and a
`_revinclude` of that path returns only the referring resources meeting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import Settings
from app.outcome import BadRequest
from app.search.registry import SUPPORTED_TYPES, SearchParam, get_param

HAS_PREFIX = "_has:"
CONTROL_PARAMS = {"_count", "_offset", "_sort", "_include", "_revinclude", "_summary",
                  "_elements", "_total", "_format", "_pretty", "_contained"}
IGNORED_CONTROLS = {"_format", "_pretty"}
MODIFIERS = {
    "token": {"not", "text", "missing"},
    "uri": {"missing", "not"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "reference": {"missing", "identifier"},
    "special": set(),
}
MAX_CHAIN_DEPTH = 3
MAX_INT = 2**31 - 1  # what every database column and OFFSET accepts


@dataclass(frozen=True)
class SearchLimits:
    """How much one search may ask for (settings FHIR_MAX_OR_VALUES, FHIR_MAX_SEARCH_VALUES,
    FHIR_MAX_SEARCH_PARAMS, FHIR_MAX_PAGE_SIZE). Beyond them a search is refused with 400
    too-costly instead of being left to the database: each value costs index lookups, and
    PostgreSQL's planning time grows much faster than the number of AND-ed parameters (each
    an IN-subquery: 1 s for 100, 21 s for 200). A larger _count is only clamped, unless the
    client asked for strict handling."""

    values_per_param: int = 100
    values: int = 500
    params: int = 20
    page_size: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> SearchLimits:
        return cls(settings.max_or_values, settings.max_search_values,
                   settings.max_search_params, settings.max_page_size)


DEFAULT_LIMITS = SearchLimits()


@dataclass
class Criterion:
    """One search key applied to one resource type."""

    resource_type: str
    param: SearchParam
    modifier: str | None = None
    # For chained references: the criterion to apply on each candidate target type.
    chain: list[Criterion] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    # For `_has:Type:param:…`: the referring resources this one must have.
    has: ReverseChain | None = None


@dataclass
class ReverseChain:
    """Resources of `source_type` whose reference parameter `param` names the searched
    resource, each meeting every criterion of `criteria` (themselves possibly `_has`)."""

    source_type: str
    param: SearchParam
    criteria: list[Criterion] = field(default_factory=list)

    def same_path(self, other: ReverseChain) -> bool:
        return (self.source_type, self.param.name) == (other.source_type, other.param.name)


HAS_PARAM = SearchParam("_has", "special", (), description="Reverse chaining")


@dataclass
class Include:
    source_type: str
    param: SearchParam | None  # None means every reference parameter (`*`)
    target_type: str | None
    iterate: bool = False
    reverse: bool = False
    # Reverse includes of a `_has` path: only referring resources meeting its criteria.
    where: list[Criterion] = field(default_factory=list)


@dataclass
class SortKey:
    name: str
    descending: bool
    param: SearchParam | None  # None for _id


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int | None = None
    offset: int = 0
    summary_count: bool = False
    summary: str | None = None  # true | text | data: trimmed representations
    elements: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # keys dropped under lenient handling
    # The key/value pairs actually used, to rebuild self/next/previous links.
    used: list[tuple[str, str]] = field(default_factory=list)


class UnknownParameter(BadRequest):
    pass


def split_values(raw: str) -> list[str]:
    """Comma-separated OR values; `\\,` is a literal comma."""
    values, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    # Clients (SAS's own example included) put a space after the comma: not part of a value.
    return [v.strip() for v in values if v.strip() != ""]


def parse_criterion(resource_type: str, key: str, depth: int = 0) -> Criterion:
    """Parse `name[:modifier][.chained...]` for `resource_type`."""
    head, _, rest = key.partition(".")
    name, _, modifier = head.partition(":")
    param = get_param(resource_type, name)
    if param is None:
        raise UnknownParameter(f"Unknown search parameter '{name}' for {resource_type}",
                               code="not-supported")
    modifier_or_none = modifier or None
    if rest:
        if param.type != "reference":
            raise BadRequest(f"'{name}' is not a reference parameter and cannot be chained")
        if depth >= MAX_CHAIN_DEPTH:
            raise BadRequest(f"Chains deeper than {MAX_CHAIN_DEPTH} levels are not supported")
        target_types = _chain_targets(param, modifier_or_none, rest)
        chain = [parse_criterion(t, rest, depth + 1) for t in target_types]
        return Criterion(resource_type, param, modifier_or_none, chain)
    _check_modifier(param, modifier_or_none)
    return Criterion(resource_type, param, modifier_or_none)


def parse_has(resource_type: str, key: str, depth: int = 0) -> Criterion:
    """Parse `_has:Type:param:rest`: `rest` is a criterion on Type (or another `_has`)."""
    parts = key.split(":", 3)
    if len(parts) < 4 or not all(parts[1:]):
        raise BadRequest(f"Malformed '{key}': expected _has:Type:reference:parameter",
                         code="invalid")
    _, source_type, name, rest = parts
    if source_type not in SUPPORTED_TYPES:
        raise UnknownParameter(f"Unknown resource type '{source_type}' in '{key}'",
                               code="not-supported")
    param = get_param(source_type, name)
    if param is None or param.type != "reference" or resource_type not in param.targets:
        raise UnknownParameter(f"'{name}' is not a reference parameter of {source_type} "
                               f"that may refer to {resource_type} (in '{key}')",
                               code="not-supported")
    if depth >= MAX_CHAIN_DEPTH:
        raise BadRequest(f"Chains deeper than {MAX_CHAIN_DEPTH} levels are not supported")
    inner = (parse_has(source_type, rest, depth + 1) if rest.startswith(HAS_PREFIX)
             else parse_criterion(source_type, rest, depth + 1))
    return Criterion(resource_type, HAS_PARAM, has=ReverseChain(source_type, param, [inner]))


def innermost(criterion: Criterion) -> Criterion:
    """The criterion of a `_has` path that takes the values."""
    while criterion.has is not None:
        criterion = criterion.has.criteria[0]
    return criterion


def merge_has(criteria: list[Criterion], new: Criterion) -> None:
    """Add a `_has` criterion, joining the criteria of a `_has` of the same path."""
    assert new.has is not None
    for existing in criteria:
        if existing.has is not None and existing.has.same_path(new.has):
            for inner in new.has.criteria:
                if inner.has is not None:
                    merge_has(existing.has.criteria, inner)
                else:
                    existing.has.criteria.append(inner)
            return
    criteria.append(new)


def leaves(criteria: list[Criterion]) -> list[Criterion]:
    """Every criterion that holds values, those inside `_has` included."""
    found: list[Criterion] = []
    for criterion in criteria:
        found.extend(leaves(criterion.has.criteria) if criterion.has else [criterion])
    return found


def _chain_targets(param: SearchParam, type_modifier: str | None, rest: str) -> list[str]:
    if type_modifier:
        if type_modifier not in param.targets:
            raise BadRequest(f"'{param.name}' cannot refer to {type_modifier}")
        return [type_modifier]
    chained_name = rest.partition(".")[0].partition(":")[0]
    candidates = [t for t in param.targets
                  if t in SUPPORTED_TYPES and get_param(t, chained_name) is not None]
    if not candidates:
        raise UnknownParameter(f"No target of '{param.name}' has a parameter '{chained_name}'",
                               code="not-supported")
    return candidates


def _check_modifier(param: SearchParam, modifier: str | None) -> None:
    if modifier is None:
        return
    if param.type == "reference" and modifier in param.targets:
        return
    if modifier not in MODIFIERS.get(param.type, set()):
        raise BadRequest(f"Modifier ':{modifier}' is not supported on '{param.name}'",
                         code="not-supported")


def parse_include(resource_type: str, raw: str, *, iterate: bool, reverse: bool) -> Include:
    parts = raw.split(":")
    if raw == "*" and not reverse:
        return Include(resource_type, None, None, iterate, reverse)
    if len(parts) not in (2, 3):
        raise BadRequest(f"Malformed include '{raw}': expected Type:param[:TargetType]")
    source, name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in SUPPORTED_TYPES:
        raise BadRequest(f"Unknown resource type '{source}' in include '{raw}'")
    if name == "*":
        return Include(source, None, target, iterate, reverse)
    param = get_param(source, name)
    if param is None or param.type != "reference":
        raise BadRequest(f"'{name}' is not a reference parameter of {source}")
    if target and target not in param.targets:
        raise BadRequest(f"{source}:{name} cannot refer to {target}")
    return Include(source, param, target, iterate, reverse)


def parse_sort(resource_type: str, raw: str) -> list[SortKey]:
    keys = []
    for item in split_values(raw):
        descending = item.startswith("-")
        name = item.lstrip("-")
        if name == "_id":
            keys.append(SortKey(name, descending, None))
            continue
        param = get_param(resource_type, name)
        if param is None or param.type not in {"date", "string", "token"}:
            raise BadRequest(f"Cannot sort {resource_type} by '{name}'", code="not-supported")
        keys.append(SortKey(name, descending, param))
    return keys


def _int(key: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{key} must be an integer, got '{raw}'") from exc
    if value < minimum:
        raise BadRequest(f"{key} must be at least {minimum}")
    if value > MAX_INT:
        raise BadRequest(f"{key} must be at most {MAX_INT}")
    return value


def parse_query(resource_type: str, pairs: list[tuple[str, str]], *,
                strict: bool = False, limits: SearchLimits = DEFAULT_LIMITS) -> SearchQuery:
    query = SearchQuery(resource_type)
    for key, raw in pairs:
        base_key = key.split(":")[0]
        if base_key in IGNORED_CONTROLS:
            continue
        if base_key in CONTROL_PARAMS:
            _apply_control(query, key, raw)
            query.used.append((key, raw))
            continue
        reverse = key.startswith(HAS_PREFIX)
        try:
            criterion = (parse_has(resource_type, key) if reverse
                         else parse_criterion(resource_type, key))
        except UnknownParameter:
            if strict:
                raise
            query.ignored.append(key)
            continue
        values = split_values(raw)
        _too_many(key, values, limits)
        if not values:
            continue  # an empty value means "no constraint", as in HAPI
        innermost(criterion).values = values
        if reverse:
            merge_has(query.criteria, criterion)
        else:
            query.criteria.append(criterion)
        query.used.append((key, raw))
    _filter_reverse_includes(query)
    _check_totals(query, limits, strict)
    return query


def _filter_reverse_includes(query: SearchQuery) -> None:
    """`_revinclude=Slot:schedule` beside `_has:Slot:schedule:…`: the included Slots are
    those the `_has` criteria selected (the window's free slots), not every Slot."""
    for include in query.includes:
        if not include.reverse or include.param is None or include.iterate:
            continue
        for criterion in query.criteria:
            chain = criterion.has
            if chain is not None and (chain.source_type, chain.param.name) == (
                    include.source_type, include.param.name):
                include.where = chain.criteria


def _too_many(key: str, values: list[str], limits: SearchLimits) -> None:
    if len(values) > limits.values_per_param:
        raise BadRequest(f"Search parameter '{key}' has {len(values)} values; at most "
                         f"{limits.values_per_param} may be OR-ed in one parameter",
                         code="too-costly")


def _check_totals(query: SearchQuery, limits: SearchLimits, strict: bool) -> None:
    criteria = leaves(query.criteria)
    if len(criteria) > limits.params:
        raise BadRequest(f"The search has {len(criteria)} parameters; at most "
                         f"{limits.params} are accepted in one search", code="too-costly")
    total = sum(len(c.values) for c in criteria)
    if total > limits.values:
        raise BadRequest(f"The search has {total} values in all its parameters; at most "
                         f"{limits.values} are accepted in one search", code="too-costly")
    if strict and query.count is not None and query.count > limits.page_size:
        raise BadRequest(f"_count={query.count} exceeds the largest page this server returns "
                         f"({limits.page_size}); ask for fewer, or leave out Prefer: "
                         "handling=strict to get pages of that size", code="too-costly")


def _apply_control(query: SearchQuery, key: str, raw: str) -> None:
    name, _, modifier = key.partition(":")
    if name == "_count":
        query.count = _int("_count", raw, 0)
    elif name == "_offset":
        query.offset = _int("_offset", raw, 0)
    elif name == "_sort":
        query.sort = parse_sort(query.resource_type, raw)
    elif name in {"_include", "_revinclude"}:
        if modifier not in {"", "iterate", "recurse"}:
            raise BadRequest(f"Unsupported modifier on {name}: '{modifier}'")
        query.includes.append(parse_include(query.resource_type, raw,
                                            iterate=modifier in {"iterate", "recurse"},
                                            reverse=name == "_revinclude"))
    elif name == "_summary":
        if raw == "count":
            query.summary_count = True
        elif raw in {"true", "text", "data"}:
            query.summary = raw
        elif raw != "false":
            raise BadRequest(f"_summary must be true, text, data, count or false, not '{raw}'")
    elif name == "_elements":
        query.elements = split_values(raw)
    # _total and _contained: total is always computed; contained resources are not searched.
