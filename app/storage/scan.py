"""Walk the live stored resources in batches, in storage order: the one loop behind every
rebuild (search indexes, SAS projections) and data migration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Connection, or_, select, true

from app.storage.schema import resources


class Row(NamedTuple):
    pk: int
    resource_type: str
    resource_id: str
    content: str


def scan(conn: Connection, types: tuple[str, ...] | None = None,
         batch_size: int = 2000, content_like: tuple[str, ...] = ()) -> Iterator[list[Row]]:
    """Batches of live resources (of some types, or all; with `content_like`, only those
    whose JSON matches one of these LIKE patterns), by increasing pk; a batch is read only
    when the previous one has been handled, so writes made meanwhile are safe."""
    wanted = resources.c.res_type.in_(types) if types is not None else true()
    if content_like:
        wanted = wanted & or_(*(resources.c.content.like(p) for p in content_like))
    last_pk = 0
    while True:
        rows = conn.execute(
            select(resources.c.pk, resources.c.res_type, resources.c.res_id,
                   resources.c.content)
            .where(resources.c.deleted.is_(False), resources.c.pk > last_pk, wanted)
            .order_by(resources.c.pk).limit(batch_size)).all()
        if not rows:
            return
        yield [Row(*row) for row in rows]
        last_pk = rows[-1][0]
