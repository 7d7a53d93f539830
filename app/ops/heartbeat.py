"""The delivery worker's heartbeat: a row per worker process, refreshed every few seconds,
so that /readyz (any host) can tell that someone delivers notifications."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from app.clock import utc_now
from app.db import write_transaction
from app.storage.schema import worker_heartbeats

BEAT_SECONDS = 5.0
# Rows of workers gone for this long are removed (by any beating worker).
FORGET_AFTER = timedelta(days=1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:160]


class Heartbeat:
    """The periodic task of one worker process."""

    def __init__(self, engine: Engine, name: str | None = None) -> None:
        self.engine = engine
        self.name = name or worker_name()
        self.started_at = utc_now()

    def __call__(self) -> None:
        now = utc_now()
        with write_transaction(self.engine) as conn:
            beaten = conn.execute(update(worker_heartbeats)
                                  .where(worker_heartbeats.c.worker == self.name)
                                  .values(beat_at=now)).rowcount
            if not beaten:
                conn.execute(insert(worker_heartbeats).values(
                    worker=self.name, started_at=self.started_at, beat_at=now))
            conn.execute(delete(worker_heartbeats)
                         .where(worker_heartbeats.c.beat_at < now - FORGET_AFTER))

    def stop(self) -> None:
        """A worker that stops cleanly says so at once (readiness follows without waiting)."""
        with write_transaction(self.engine) as conn:
            conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.worker == self.name))


def newest_beat(conn: Connection) -> datetime | None:
    return conn.execute(select(func.max(worker_heartbeats.c.beat_at))).scalar()
