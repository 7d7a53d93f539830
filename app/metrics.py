"""The project's Prometheus metrics, and GET /metrics that shows them.

Counters are prometheus_client metrics of the process that counts. Under gunicorn, set
PROMETHEUS_MULTIPROC_DIR to an empty directory (emptied at each start) in the master's
environment: each worker then writes its counts there and /metrics adds them up
(prometheus_client.multiprocess); without it /metrics shows the answering process's registry.
Values that every process reads from the same files (the CRLs) are computed when /metrics is
read, not stored.

In the production security profile /metrics needs the ADMIN_TOKEN bearer token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine

from app.auth.admin_token import require_admin_token
from app.config import Settings
from app.ops.collectors import OperationsCollector
from app.state import current_state

REVOKED_CERTIFICATES_REFUSED = Counter(
    "fhir_agenda_revoked_client_certificates_refused",
    "Requests refused because their client certificate is on its issuer's CRL")
CRL_REFRESH_FAILURES = Counter(
    "fhir_agenda_crl_refresh_failures",
    "Failed downloads of a CRL distribution point (CLIENT_CRL_URLS)", ["url"])


class CrlCollector:
    """One series per CRL source and per CRL in use, as the files are when /metrics is
    read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        # Imported here: app.auth.revocation counts into this module.
        from app.auth.certificates import CertificateRefused, trusted_authorities
        from app.auth.crl import sources
        from app.auth.revocation import current

        settings = self.settings
        if not settings.checks_revocation:
            return
        loaded = GaugeMetricFamily("fhir_agenda_crl_loaded", "1 when the CRL source was read "
                                   "and its signature checked, else 0", labels=["source"])
        try:
            authorities = trusted_authorities(settings.client_ca_bundle or "")
        except CertificateRefused:
            for source in sources(settings):
                loaded.add_metric([source.label], 0)
            yield loaded
            return
        labels = ["source", "issuer"]
        until = GaugeMetricFamily("fhir_agenda_crl_next_update_seconds", "Seconds until the "
                                  "CRL's nextUpdate (negative once past it)", labels=labels)
        stale = GaugeMetricFamily("fhir_agenda_crl_stale", "1 when the CRL is past its "
                                  "nextUpdate (still used during CLIENT_CRL_GRACE_HOURS)",
                                  labels=labels)
        expired = GaugeMetricFamily("fhir_agenda_crl_expired", "1 when the CRL is past its "
                                    "nextUpdate and the grace: certificates of its issuer are "
                                    "refused", labels=labels)
        revoked = GaugeMetricFamily("fhir_agenda_crl_revoked_serials",
                                    "Serial numbers listed by the CRL", labels=labels)
        now = datetime.now(UTC)
        grace = timedelta(hours=settings.client_crl_grace_hours)
        revocations = current(settings, authorities)
        for state in revocations.sources:
            loaded.add_metric([state.source.label], 0 if state.problem else 1)
            # A CRL superseded by a newer one of its issuer no longer matters.
            for crl in filter(revocations.in_use, state.crls):
                names = [state.source.label, crl.issuer_name]
                until.add_metric(names, (crl.next_update - now).total_seconds())
                stale.add_metric(names, int(now > crl.next_update))
                expired.add_metric(names, int(now > crl.next_update + grace))
                revoked.add_metric(names, len(crl.revoked))
        yield from (loaded, until, stale, expired, revoked)


def counted() -> CollectorRegistry:
    """The counted metrics: of every process sharing PROMETHEUS_MULTIPROC_DIR (gunicorn's
    workers, the delivery worker of this host), else of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        stored = CollectorRegistry()
        multiprocess.MultiProcessCollector(stored)
        return stored
    return REGISTRY


def exposition(settings: Settings, engine: Engine | None = None) -> bytes:
    """The text format of every metric (all gunicorn workers with PROMETHEUS_MULTIPROC_DIR)."""
    scraped = CollectorRegistry()
    scraped.register(CrlCollector(settings))
    if engine is not None:
        scraped.register(OperationsCollector(engine))
    return generate_latest(counted()) + generate_latest(scraped)


metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
def metrics_view() -> Response:
    settings = current_state().settings
    if not settings.development:
        refused = require_admin_token()
        if refused is not None:
            return refused
    return Response(exposition(settings, current_state().engine),
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
