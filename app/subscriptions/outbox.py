"""The transactional outbox: messages written with the change, delivered in order per key.

States: pending → delivering (leased by a worker) → delivered, or back to pending with a
later `next_attempt_at`, or parked (given up; kept with its last error, replayable). A newer
full-state update supersedes older pending ones of the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    and_,
    case,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.sql import Select

from app.clock import utc_now
from app.ops.request_id import with_request_id
from app.storage.schema import outbox

OPEN_STATES = ("pending", "delivering", "parked")  # block later messages of their key
CLAIMABLE_STATES = ("pending", "delivering")


@dataclass(frozen=True)
class Message:
    pk: int
    subscriber: str
    ordering_key: str
    resource_type: str
    resource_id: str
    version: int
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    retry_method: str | None
    retry_url: str | None
    attempts: int
    created_at: datetime

    def request(self) -> tuple[str, str]:
        """What to send now: a retry goes by its idempotent form when there is one."""
        if self.attempts > 1 and self.retry_method and self.retry_url:
            return self.retry_method, self.retry_url
        return self.method, self.url


def enqueue(conn: Connection, *, subscriber: str, ordering_key: str, resource_type: str,
            resource_id: str, version: int, method: str, url: str,
            headers: dict[str, str], body: bytes | str | None,
            retry: tuple[str, str] | None = None, supersede: bool = False) -> None:
    now = utc_now()
    if supersede:
        # Full-state updates: an older one still waiting would only be overwritten.
        conn.execute(update(outbox).where(
            outbox.c.ordering_key == ordering_key, outbox.c.status == "pending",
            outbox.c.method == method).values(status="superseded"))
    conn.execute(insert(outbox).values(
        subscriber=subscriber, ordering_key=ordering_key, resource_type=resource_type,
        resource_id=resource_id, version=version, method=method, url=url,
        # Sent with the message: the delivery carries the id of the request behind it.
        headers=orjson.dumps(with_request_id(headers)).decode(),
        body=body.decode() if isinstance(body, bytes) else body,
        retry_method=retry[0] if retry else None, retry_url=retry[1] if retry else None,
        status="pending", attempts=0, next_attempt_at=now, created_at=now))


def drop_pending(conn: Connection, subscriber: str, reason: str) -> None:
    """Withdraw what waits for a subscriber that no longer wants it (in-flight ones finish)."""
    conn.execute(update(outbox).where(outbox.c.subscriber == subscriber,
                                      outbox.c.status.in_(("pending", "parked")))
                 .values(status="superseded", last_error=reason))


def has_history(conn: Connection, ordering_key: str) -> bool:
    """Whether anything was ever queued for this key (its creation was announced)."""
    return conn.execute(select(outbox.c.pk).where(
        outbox.c.ordering_key == ordering_key, outbox.c.status != "superseded").limit(1)
    ).first() is not None


def last_body(conn: Connection, ordering_key: str) -> str | None:
    row = conn.execute(select(outbox.c.body).where(
        outbox.c.ordering_key == ordering_key, outbox.c.status != "superseded")
        .order_by(outbox.c.pk.desc()).limit(1)).first()
    return row[0] if row else None


def _due(now: datetime) -> Select:
    # The literal status lists match the partial indexes' predicates (ix_outbox_claimable,
    # ix_outbox_open_key), so both databases read only open rows, never delivered ones.
    earlier = outbox.alias("earlier")
    blocked = exists().where(earlier.c.ordering_key == outbox.c.ordering_key,
                             earlier.c.pk < outbox.c.pk,
                             earlier.c.status.in_(literal_states(OPEN_STATES)))
    ready = ((outbox.c.status == "pending") & (outbox.c.next_attempt_at <= now)) | (
        (outbox.c.status == "delivering") & (outbox.c.lease_until < now))
    claimable = outbox.c.status.in_(literal_states(CLAIMABLE_STATES))
    return select(outbox).where(claimable, ready, ~blocked).order_by(outbox.c.pk)


def literal_states(states: tuple[str, ...]) -> Any:
    """Inlined, not bound: a partial index is only used when the planner can see that the
    query's condition implies the index's, which a bound parameter hides."""
    return [literal_column(f"'{state}'") for state in states]


def claim(conn: Connection, lease: timedelta) -> Message | None:
    """Lease the oldest deliverable message (the head of its key), or None.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets several workers claim side by side; a
    worker that dies leaves a lease that expires, and the message is claimed again."""
    now = utc_now()
    query = _due(now).limit(1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=outbox)
    row = conn.execute(query).first()
    if row is None:
        return None
    conn.execute(update(outbox).where(outbox.c.pk == row.pk).values(
        status="delivering", lease_until=now + lease, attempts=row.attempts + 1))
    return Message(row.pk, row.subscriber, row.ordering_key, row.resource_type,
                   row.resource_id, row.version, row.method, row.url,
                   orjson.loads(row.headers), row.body, row.retry_method, row.retry_url,
                   row.attempts + 1, row.created_at)


def still_ours(conn: Connection, message: Message) -> bool:
    """Whether the lease taken for this attempt still holds (locks the row until commit)."""
    query = select(outbox.c.pk).where(
        outbox.c.pk == message.pk, outbox.c.status == "delivering",
        outbox.c.attempts == message.attempts)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first() is not None


def delivered(conn: Connection, pk: int, status: int) -> None:
    conn.execute(update(outbox).where(outbox.c.pk == pk).values(
        status="delivered", delivered_at=utc_now(), lease_until=None, last_status=status,
        last_error=None))


def retry_later(conn: Connection, pk: int, delay: timedelta, error: str,
                status: int | None) -> None:
    conn.execute(update(outbox).where(outbox.c.pk == pk).values(
        status="pending", next_attempt_at=utc_now() + delay, lease_until=None,
        last_error=error[:4000], last_status=status))


def park(conn: Connection, pk: int, error: str, status: int | None) -> None:
    conn.execute(update(outbox).where(outbox.c.pk == pk).values(
        status="parked", lease_until=None, last_error=error[:4000], last_status=status))


def replay(conn: Connection, pks: list[int] | None = None) -> int:
    """Put parked messages back in the queue (all of them, or those listed), with a fresh
    give-up horizon. A message tried before may have landed: it keeps one attempt, so the
    replay goes by its idempotent retry form (a conditional PUT rather than a second POST)."""
    condition = outbox.c.status == "parked"
    if pks:
        condition = and_(condition, outbox.c.pk.in_(pks))
    now = utc_now()
    tried = case((outbox.c.attempts > 0, 1), else_=0)
    result = conn.execute(update(outbox).where(condition).values(
        status="pending", attempts=tried, next_attempt_at=now, created_at=now,
        last_error=None))
    return result.rowcount or 0


def listing(conn: Connection, statuses: tuple[str, ...] = ("pending", "delivering", "parked"),
            limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(select(
        outbox.c.pk, outbox.c.subscriber, outbox.c.ordering_key, outbox.c.method,
        outbox.c.url, outbox.c.status, outbox.c.attempts, outbox.c.next_attempt_at,
        outbox.c.created_at, outbox.c.last_status, outbox.c.last_error)
        .where(outbox.c.status.in_(statuses)).order_by(outbox.c.pk).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {status: count for status, count in rows}
