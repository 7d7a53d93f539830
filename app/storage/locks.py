"""Transaction-scoped named locks, to serialise writers that decide on what they read.

Conditional creates and updates read ("does a match exist?") then write; two identical
requests in parallel would both see nothing and both create. Holding a lock named after
the criteria for the rest of the transaction makes the second wait and then see the first.
PostgreSQL: advisory transaction locks. SQLite: writers already run one at a time
(BEGIN IMMEDIATE), so there is nothing more to do.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text


def lock_key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold(conn: Connection, *names: str) -> None:
    """Take the named locks (in a stable order, so two writers cannot deadlock)."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({lock_key(name) for name in names}):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
