"""The Prometheus metrics of the running service: requests, database pool, deliveries,
subscriptions and logins (app/metrics.py exposes them, with what is read at scrape time).

A leaf module (prometheus_client only), so that every layer may count into it. Under
gunicorn, PROMETHEUS_MULTIPROC_DIR makes each process write its values to files that
/metrics adds up; the delivery worker counts there too when it shares the directory.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram, multiprocess

# Bounds chosen for the SAS service levels: the ANS kit fails a search over 1 s and the SAS
# platform gives up after 7 s, so both are bucket bounds and "share under 1 s" is exact.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.0, 10.0)
# `interaction`: the FHIR interaction (read, search-type, create…), or the area of a
# non-FHIR request (web, oauth, admin, ops); `variant`: the search variant that answered
# (sas-individual…; their `name`), else "none".
REQUEST_LABELS = ("interaction", "variant")
NO_VARIANT = "none"

REQUEST_DURATION = Histogram(
    "fhir_agenda_http_request_duration_seconds",
    "Time to answer a request, per FHIR interaction and search variant",
    REQUEST_LABELS, buckets=LATENCY_BUCKETS)
REQUESTS = Counter(
    "fhir_agenda_http_requests", "Requests answered, per interaction, variant and status code",
    (*REQUEST_LABELS, "code"))

DB_POOL_CHECKED_OUT = Gauge(
    "fhir_agenda_db_pool_checked_out_connections",
    "Database connections in use (all processes)", multiprocess_mode="livesum")
DB_POOL_CAPACITY = Gauge(
    "fhir_agenda_db_pool_capacity_connections",
    "Connections the pools may hold (pool size + overflow, all processes; 0 = unbounded)",
    multiprocess_mode="livesum")
DB_CONNECTIONS_OPENED = Counter(
    "fhir_agenda_db_connections_opened", "Database connections opened by the pools")

DELIVERIES = Counter(
    "fhir_agenda_deliveries",
    "Outbox delivery attempts per channel and outcome (delivered, retry, parked, dropped)",
    ("channel", "outcome"))
DELIVERY_DURATION = Histogram(
    "fhir_agenda_delivery_duration_seconds", "Time of one delivery attempt, per channel",
    ("channel",), buckets=LATENCY_BUCKETS)
SUBSCRIPTION_ERRORS = Counter(
    "fhir_agenda_subscription_errors",
    "Subscriptions switched to status error after failed deliveries", ("channel",))

LOGINS = Counter(
    "fhir_agenda_logins", "Login attempts on the web pages, per method and outcome",
    ("method", "outcome"))


def retire(pid: int) -> None:
    """A process ends: its live gauges (connections in use, pool capacity) stop counting
    (multiprocess mode; its counters stay, as Prometheus expects)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
