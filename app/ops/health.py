"""/healthz (the process answers) and /readyz (it can do its job), for load balancers,
orchestrators and monitoring; both public, cheap enough to poll every second.

/readyz checks, in one short read: the database answers, its schema is the code's
(Alembic head), a delivery worker beat within HEALTH_WORKER_MAX_AGE_SECONDS, and no
notification has waited longer than HEALTH_OUTBOX_MAX_AGE_SECONDS (0 turns either off).
A failing check answers 503 with the checks in JSON, and nothing personal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, jsonify
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.clock import utc_now
from app.config import PROJECT_ROOT, Settings
from app.db_errors import DatabaseFault, classify
from app.ops.heartbeat import newest_beat
from app.state import current_state
from app.storage.schema import outbox
from app.subscriptions.outbox import CLAIMABLE_STATES, literal_states

health = Blueprint("health", __name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@cache
def expected_revisions() -> frozenset[str]:
    """The heads of migrations/ (read once: they only change with the code)."""
    return frozenset(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads())


def oldest_undelivered(conn: Connection) -> datetime | None:
    """When the oldest message still waiting for delivery was queued (parked ones are
    counted apart: they wait for an operator, not for the worker)."""
    return conn.execute(select(func.min(outbox.c.created_at)).where(
        outbox.c.status.in_(literal_states(CLAIMABLE_STATES)))).scalar()


def _age_check(name: str, moment: datetime | None, now: datetime, limit: float,
               missing: Check) -> Check:
    if limit <= 0:
        return Check(name, True, "not checked")
    if moment is None:
        return missing
    age = (now - moment).total_seconds()
    return Check(name, age <= limit, f"{age:.0f} s (limit {limit:.0f} s)")


def readiness(conn: Connection, settings: Settings) -> list[Check]:
    now = utc_now()
    revisions = frozenset(row[0] for row in conn.execute(
        text("SELECT version_num FROM alembic_version")))
    expected = expected_revisions()
    checks = [Check("database", True, "reachable"),
              Check("migrations", revisions == expected,
                    f"database at {', '.join(sorted(revisions)) or 'nothing'}, code at "
                    f"{', '.join(sorted(expected))}")]
    checks.append(_age_check(
        "worker", newest_beat(conn), now, settings.health_worker_max_age_seconds,
        Check("worker", False, "no delivery worker has ever beaten: start `fhir-agenda "
                               "worker`")))
    checks.append(_age_check(
        "outbox", oldest_undelivered(conn), now, settings.health_outbox_max_age_seconds,
        Check("outbox", True, "nothing waiting")))
    return checks


@health.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify({"status": "ok"}))


@health.get("/readyz")
def readyz() -> Response:
    state = current_state()
    try:
        with state.engine.connect() as conn:
            checks = readiness(conn, state.settings)
    except SQLAlchemyError as exc:
        if classify(exc) is DatabaseFault.UNAVAILABLE:
            checks = [Check("database", False, f"unreachable ({type(exc).__name__})")]
        else:  # reachable, but our tables are not there (yet)
            checks = [Check("database", True, "reachable"),
                      Check("migrations", False, "schema missing or older than the code: "
                                                 "run `fhir-agenda migrate`")]
    ready = all(check.ok for check in checks)
    response = jsonify({"status": "ready" if ready else "not-ready",
                        "checks": {check.name: check.as_dict() for check in checks}})
    response.status_code = 200 if ready else 503
    return _no_store(response)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
