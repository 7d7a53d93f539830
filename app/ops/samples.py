"""The SLA page's memory: once a minute, the delivery worker writes a snapshot of the
cumulative Prometheus values the page plots into `metric_samples` (one row per host and
minute, kept 24 h), and the page turns consecutive snapshots into per-minute figures.

Why this is not a second store: nothing is measured twice. The values are those of the
Prometheus metrics (app/ops/meters.py), read the way /metrics reads them (the files of
PROMETHEUS_MULTIPROC_DIR, shared on a host by gunicorn and the worker); prometheus_client
keeps no history, so 24 h of once-a-minute snapshots (1,440 small rows per host) live in
the database the service already has, and are deleted as they age. A Prometheus server
scraping /metrics remains the place for longer history and alerting.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from app.clock import utc_now
from app.db import write_transaction
from app.ops.health import oldest_undelivered
from app.ops.meters import NO_VARIANT
from app.ops.observe import FHIR_INTERACTIONS
from app.storage.schema import metric_samples
from app.subscriptions import outbox

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 60.0
KEEP = timedelta(hours=25)  # 24 h shown, and the snapshot before the first minute
LATENCY = "fhir_agenda_http_request_duration_seconds"
REQUESTS = "fhir_agenda_http_requests"
FHIR = frozenset({*FHIR_INTERACTIONS.values(), "other"})


def host_name() -> str:
    return socket.gethostname()[:160]


def snapshot(registry: CollectorRegistry) -> dict[str, Any]:
    """The cumulative values the page needs: latency buckets of the search variants (by
    `le`), and requests by status class, for the FHIR API and per variant."""
    latency: dict[str, dict[str, float]] = {}
    requests: dict[str, dict[str, float]] = {}
    for family in registry.collect():
        if family.name == LATENCY:
            for sample in family.samples:
                variant = sample.labels.get("variant", NO_VARIANT)
                if sample.name.endswith("_bucket") and variant != NO_VARIANT:
                    buckets = latency.setdefault(variant, {})
                    le = sample.labels["le"]
                    buckets[le] = buckets.get(le, 0.0) + sample.value
        elif family.name == REQUESTS:
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if sample.labels.get("interaction") not in FHIR:
                    continue
                status_class = sample.labels.get("code", "0")[:1] + "xx"
                variant = sample.labels.get("variant", NO_VARIANT)
                for key in ("all", variant) if variant != NO_VARIANT else ("all",):
                    counts = requests.setdefault(key, {})
                    counts[status_class] = counts.get(status_class, 0.0) + sample.value
    return {"latency": latency, "requests": requests}


def outbox_state(conn: Connection) -> dict[str, float]:
    counts = outbox.counts(conn)
    oldest = oldest_undelivered(conn)
    return {"pending": counts.get("pending", 0) + counts.get("delivering", 0),
            "parked": counts.get("parked", 0),
            "oldest_age": (utc_now() - oldest).total_seconds() if oldest else 0.0}


def record(conn: Connection, host: str, taken_at: datetime, sample: dict[str, Any]) -> bool:
    """Write this minute's snapshot of `host` (False when another worker of the host
    already did: theirs holds the same cumulative values) and drop aged rows."""
    exists = conn.execute(select(metric_samples.c.host).where(
        metric_samples.c.host == host, metric_samples.c.taken_at == taken_at)).first()
    conn.execute(delete(metric_samples).where(metric_samples.c.taken_at < taken_at - KEEP))
    if exists:
        return False
    conn.execute(insert(metric_samples).values(host=host, taken_at=taken_at,
                                               sample=orjson.dumps(sample).decode()))
    return True


class Sampler:
    """The worker's periodic task (every SAMPLE_SECONDS)."""

    def __init__(self, engine: Engine, host: str | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.engine = engine
        self.host = host or host_name()
        self.registry = registry

    def _registry(self) -> CollectorRegistry:
        from app.metrics import counted  # the registry /metrics shows

        if self.registry is None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            log.debug("PROMETHEUS_MULTIPROC_DIR is not set: no request latencies to sample")
        return self.registry or counted()

    def __call__(self) -> None:
        taken_at = utc_now().replace(second=0, microsecond=0)
        sample = snapshot(self._registry())
        try:
            with write_transaction(self.engine) as conn:
                sample["outbox"] = outbox_state(conn)
                record(conn, self.host, taken_at, sample)
        except IntegrityError:
            pass  # another worker of this host wrote the same minute first


def load(conn: Connection, since: datetime) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
    """The snapshots per host, oldest first."""
    rows = conn.execute(select(metric_samples).where(metric_samples.c.taken_at >= since)
                        .order_by(metric_samples.c.host, metric_samples.c.taken_at))
    by_host: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for row in rows:
        by_host.setdefault(row.host, []).append((row.taken_at, orjson.loads(row.sample)))
    return by_host


def increase(before: float, after: float) -> float:
    """What a counter gained between two snapshots; a counter that went down was reset (a
    restart empties PROMETHEUS_MULTIPROC_DIR), so it gained its whole new value."""
    return after - before if after >= before else after


def _flat(sample: dict[str, Any]) -> dict[str, float]:
    """The cumulative values of a snapshot as one flat mapping (keys joined by `/`)."""
    flat: dict[str, float] = {}
    for variant, buckets in sample.get("latency", {}).items():
        for le, value in buckets.items():
            flat[f"latency/{le}"] = flat.get(f"latency/{le}", 0.0) + value
            flat[f"variant/{variant}/{le}"] = value
    for key, counts in sample.get("requests", {}).items():
        for status_class, value in counts.items():
            flat[f"requests/{key}/{status_class}"] = value
    return flat


def minute_increases(snapshots: Iterable[tuple[datetime, dict[str, Any]]]
                     ) -> dict[datetime, dict[str, float]]:
    """Per minute, what each flat counter gained since the snapshot before (one host)."""
    out: dict[datetime, dict[str, float]] = {}
    previous: dict[str, float] | None = None
    for taken_at, sample in snapshots:
        flat = _flat(sample)
        if previous is not None:
            out[taken_at] = {key: increase(previous.get(key, 0.0), value)
                             for key, value in flat.items()}
        previous = flat
    return out
