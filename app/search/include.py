"""_include and _revinclude: follow indexed references from a page of results."""

from __future__ import annotations

from sqlalchemy import Connection, and_, or_, select, tuple_

from app.search.query import Include
from app.search.sql import SqlContext, resource_filter
from app.storage.repository import Stored, stored_from_row
from app.storage.schema import resources, search_reference

Key = tuple[str, str]


def _fetch(conn: Connection, keys: set[Key]) -> list[Stored]:
    if not keys:
        return []
    rows = conn.execute(
        select(resources).where(tuple_(resources.c.res_type, resources.c.res_id).in_(
            sorted(keys)), resources.c.deleted.is_(False))
        .order_by(resources.c.pk)).all()
    return [stored_from_row(r) for r in rows]


def _forward(conn: Connection, include: Include, sources: list[Stored]) -> set[Key]:
    pks = [s.pk for s in sources if s.resource_type == include.source_type]
    if not pks:
        return set()
    index = search_reference
    query = select(index.c.target_type, index.c.target_id).where(
        index.c.res_pk.in_(pks), index.c.target_id.is_not(None), index.c.url.is_(None))
    if include.param is not None:
        query = query.where(index.c.param == include.param.name)
    if include.target_type:
        query = query.where(index.c.target_type == include.target_type)
    return {(t, i) for t, i in conn.execute(query).all()}


def _reverse(conn: Connection, include: Include, targets: list[Stored],
             ctx: SqlContext) -> list[Stored]:
    if not targets:
        return []
    index = search_reference
    target_keys = [(t.resource_type, t.resource_id) for t in targets]
    if include.target_type:
        target_keys = [k for k in target_keys if k[0] == include.target_type]
    if not target_keys:
        return []
    referring = select(index.c.res_pk).where(
        index.c.res_type == include.source_type,
        or_(*(and_(index.c.target_type == t, index.c.target_id == i) for t, i in target_keys)))
    if include.param is not None:
        referring = referring.where(index.c.param == include.param.name)
    wanted = resources.c.pk.in_(referring)
    if include.where:  # the criteria of the `_has` of the same path
        wanted = and_(wanted, resource_filter(resources, include.source_type, include.where,
                                              ctx))
    rows = conn.execute(select(resources).where(wanted, resources.c.deleted.is_(False))
                        .order_by(resources.c.pk)).all()
    return [stored_from_row(r) for r in rows]


def resolve_includes(conn: Connection, includes: list[Include], matches: list[Stored],
                     max_depth: int, ctx: SqlContext) -> list[Stored]:
    """Resources to add with search mode `include`, each once, matches excluded."""
    seen: set[Key] = {(m.resource_type, m.resource_id) for m in matches}
    included: list[Stored] = []
    frontier = matches
    for depth in range(max_depth):
        found: list[Stored] = []
        for include in includes:
            if depth > 0 and not include.iterate:
                continue
            sources = frontier if depth > 0 else matches
            if include.reverse:
                candidates = _reverse(conn, include, sources, ctx)
            else:
                keys = _forward(conn, include, sources) - seen
                candidates = _fetch(conn, keys)
            for candidate in candidates:
                key = (candidate.resource_type, candidate.resource_id)
                if key not in seen:
                    seen.add(key)
                    found.append(candidate)
        if not found:
            break
        included.extend(found)
        # An iterate include applies to everything included so far, matches included.
        frontier = found
    return included
