"""OR-ed search values (`name=a,b,c`) as SQL that both backends accept at any length.

A flat `a OR b OR …` is parsed by SQLite into a tree as deep as the list is long, and SQLite
refuses trees deeper than 1000 ("Expression tree is too large"); SQLAlchemy flattens nested
ORs, so parentheses cannot balance it. Values compared for equality therefore become one
`IN (…)` list; matches that need an OR (date ranges, string prefixes) are cut into batches,
each its own SELECT, joined by UNION ALL inside the one `IN (…)` of the criterion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, false, or_, union_all

# Terms per batch: batches cost time (100 date values over 4,000 Slots, median of 15 runs:
# SQLite 15 ms in one SELECT, 26 ms in batches of 50, 31 ms in batches of 25; PostgreSQL 10,
# 14 and 15 ms), so a batch is as large as stays clear of SQLite's limit: a term is at most
# 4 deep and the rest of a statement (20 parameters, chains) well under 100. With the
# default FHIR_MAX_OR_VALUES (100) a criterion is always one SELECT.
OR_BATCH = 200


def equal_to_any(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column = v` for one value (the SQL stays what the planner saw before), else IN."""
    if len(values) == 1:
        return column == values[0]
    return column.in_(list(values))


def any_of(terms: Sequence[ColumnElement[bool]],
           select_where: Callable[[ColumnElement[bool]], Select[Any]]
           ) -> Select[Any] | CompoundSelect:
    """`select_where(t1 OR … OR tn)`, in UNION ALLed batches of OR_BATCH terms."""
    if not terms:
        return select_where(false())
    selects = [select_where(or_(*terms[start:start + OR_BATCH]))
               for start in range(0, len(terms), OR_BATCH)]
    return selects[0] if len(selects) == 1 else union_all(*selects)
