"""Housekeeping on the whole database (tests and demo reloads)."""

from __future__ import annotations

from sqlalchemy import Engine, delete

from app.storage.schema import metadata


def truncate_all(engine: Engine) -> None:
    """Remove every row of every table, children first."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
