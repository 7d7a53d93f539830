"""Metrics read from the database when /metrics is scraped: the same for every process and
host, so they are computed, never counted (outbox depth and age, worker heartbeat)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.clock import utc_now
from app.ops.health import oldest_undelivered
from app.ops.heartbeat import newest_beat
from app.subscriptions import outbox

# Delivered and superseded rows are history, not depth.
DEPTH_STATES = ("pending", "delivering", "parked")


class OperationsCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                counts = outbox.counts(conn)
                oldest = oldest_undelivered(conn)
                beat = newest_beat(conn)
        except SQLAlchemyError:
            return  # /metrics still shows the counters; /readyz says why
        now = utc_now()
        depth = GaugeMetricFamily("fhir_agenda_outbox_messages", "Outbox messages waiting "
                                  "(pending, delivering) or given up (parked)",
                                  labels=["status"])
        for status in DEPTH_STATES:
            depth.add_metric([status], counts.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "fhir_agenda_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for delivery (0 when none)",
            value=(now - oldest).total_seconds() if oldest else 0.0)
        if beat is not None:
            yield GaugeMetricFamily(
                "fhir_agenda_worker_heartbeat_age_seconds",
                "Seconds since the newest delivery worker heartbeat",
                value=(now - beat).total_seconds())
