"""The search engine for the server's own queries: regulator uniqueness, Subscription
matching, SAS place resolution.

The same parser and SQL as a client's search, so an internal query means what the same
FHIR search means (prefixed national ids, reference forms, date semantics); but no access
checks, no paging, no caps: the callers are our code, not a client.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, exists, select

from app.search.query import SearchLimits, parse_query
from app.search.sql import SqlContext, resource_filter
from app.storage.references import chunks
from app.storage.repository import Stored, stored_from_row
from app.storage.schema import resources

UNLIMITED = SearchLimits(sys.maxsize, sys.maxsize, sys.maxsize, sys.maxsize)
# Internal criteria name local resources as `Type/id` and dates with their offsets.
DEFAULT_CONTEXT = SqlContext("Europe/Paris", "")
Criteria = list[tuple[str, str]]


def _where(resource_type: str, criteria: Criteria, context: SqlContext) -> Any:
    query = parse_query(resource_type, criteria, strict=True, limits=UNLIMITED)
    return resource_filter(resources, resource_type, query.criteria, context)


def find(conn: Connection, resource_type: str, criteria: Criteria, *,
         context: SqlContext = DEFAULT_CONTEXT, limit: int | None = None) -> list[Stored]:
    """The live resources matching FHIR search criteria (e.g. `[("status", "active,error")]`),
    in storage order."""
    statement = select(resources).where(_where(resource_type, criteria, context)).order_by(
        resources.c.pk)
    if limit is not None:
        statement = statement.limit(limit)
    return [stored_from_row(row) for row in conn.execute(statement)]


def find_ids(conn: Connection, resource_type: str, criteria: Criteria, *,
             context: SqlContext = DEFAULT_CONTEXT) -> set[str]:
    """The ids of the live resources matching the criteria."""
    statement = select(resources.c.res_id).where(_where(resource_type, criteria, context))
    return set(conn.execute(statement).scalars())


def any_match(conn: Connection, resource_type: str, criteria: Criteria, *,
              context: SqlContext = DEFAULT_CONTEXT) -> bool:
    statement = select(exists().where(_where(resource_type, criteria, context)))
    return bool(conn.execute(statement).scalar())


def referring(conn: Connection, resource_type: str, param: str,
              targets: dict[str, set[str]]) -> set[str]:
    """Ids of the `resource_type` resources whose reference parameter `param` names one of
    the targets (by type: `{"Location": {"a", "b"}}`), e.g. the roles at some Locations."""
    found: set[str] = set()
    for target_type, ids in targets.items():
        for chunk in chunks(ids):
            found |= find_ids(conn, resource_type, [(param, one_of(chunk, f"{target_type}/"))])
    return found


def check_criteria(resource_type: str, criteria: Criteria, context: SqlContext) -> None:
    """Parse and compile criteria without running them: raises the FhirError a client would
    get (unknown parameter, malformed value)."""
    _where(resource_type, criteria, context)


def one_of(values: Iterable[str], prefix: str = "") -> str:
    """A comma-separated OR value, commas and backslashes in values escaped."""
    return ",".join(prefix + v.replace("\\", "\\\\").replace(",", "\\,") for v in values)
