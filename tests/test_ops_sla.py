"""The SLA page (/supervision): who may see it, what it draws from the minute snapshots of
the Prometheus metrics, and the snapshots themselves, on both databases."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select

from app.clock import utc_now
from app.db import write_transaction
from app.ops.samples import Sampler, increase, record, snapshot
from app.ops.selftest.searches import ps_search
from app.ops.sla_series import quantile
from app.storage.schema import metric_samples
from tests.support.accounts import text
from tests.support.live_server import LiveServer
from tests.support.operators import operator_client
from tests.support.sas_agenda import start_worker, stop_worker, wait_until

MARTIN = "810003456786"  # any IDNPS: the SAS search answers whether or not it is known


def test_quantiles_interpolate_inside_their_bucket_like_prometheus() -> None:
    cumulative = {"0.1": 50.0, "1.0": 90.0, "7.0": 100.0, "+Inf": 100.0}
    assert quantile(0.5, cumulative) == pytest.approx(0.1)
    assert quantile(0.7, cumulative) == pytest.approx(0.1 + 0.9 * 20 / 40)
    assert quantile(0.95, cumulative) == pytest.approx(1.0 + 6.0 * 5 / 10)
    assert quantile(0.99, {"1.0": 0.0, "+Inf": 4.0}) == 1.0  # beyond the last bound
    assert quantile(0.5, {"1.0": 0.0, "+Inf": 0.0}) is None


def test_a_counter_that_went_down_was_reset() -> None:
    assert increase(10.0, 14.0) == 4.0
    assert increase(10.0, 3.0) == 3.0  # a restart emptied PROMETHEUS_MULTIPROC_DIR


def test_only_administrators_see_the_page(app: Flask) -> None:
    anonymous = app.test_client().get("/supervision")
    assert anonymous.status_code == 302
    assert anonymous.location == "/connexion?next=/supervision"
    staff = operator_client(app, "accueil@centre.fr", "staff").get("/supervision")
    assert staff.status_code == 403
    assert "réservée aux administrateurs" in text(staff)
    admin = operator_client(app, "admin@centre.fr", "administrator").get("/supervision")
    assert admin.status_code == 200
    page = text(admin)
    assert "Supervision du service" in page and "Aucune mesure sur cette période" in page
    assert page.count("<svg") == 4 and "<polyline" not in page
    assert admin.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script" not in page  # server-side SVG only


def _sample(engine: Engine, host: str, minutes_ago: int, sample: dict) -> None:
    taken_at = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    with write_transaction(engine) as conn:
        record(conn, host, taken_at, sample)


def test_the_page_plots_what_the_snapshots_of_the_metrics_say(app: Flask,
                                                              engine: Engine) -> None:
    client = app.test_client()
    before = snapshot(REGISTRY)
    before["outbox"] = {"pending": 0, "parked": 0, "oldest_age": 0}
    for _ in range(3):
        answer = client.get(f"/fhir/{ps_search([MARTIN]).url}")
        assert answer.status_code == 200 and answer.get_json()["resourceType"] == "Bundle"
    assert client.get(f"/fhir/{ps_search([MARTIN], hours=80).url}").status_code == 400
    after = snapshot(REGISTRY)
    after["outbox"] = {"pending": 3, "parked": 1, "oldest_age": 42}
    _sample(engine, "web-1", 2, before)
    _sample(engine, "web-1", 1, after)
    page = text(operator_client(app, "admin@centre.fr", "administrator").get("/supervision"))
    figures = dict(re.findall(r'<dd id="([a-z0-9-]+)">\s*([^<]*?)\s*</dd>', page))
    assert figures["recherches"] == "4"  # three answered, one refused (73 h)
    assert figures["sous-1s"] == "100.00 %" and figures["sous-7s"] == "100.00 %"
    assert figures["erreurs"] == "0.00 %"
    assert figures["en-attente"].startswith("3") and "depuis 42 s" in figures["en-attente"]
    assert figures["bloquees"] == "1"
    assert "Serveurs mesurés : web-1" in page
    # One measured bin: drawn as points (circles) on the latency and throughput charts, the
    # 1 s and 7 s lines with their labels, and the notification gauges.
    assert re.search(r'<circle class="p95"[^>]*><title>p95</title>', page)
    assert "1 s — seuil du kit de test ANS" in page
    assert "7 s — abandon par la plateforme SAS" in page
    assert re.search(r'<circle class="sas"[^>]*><title>recherches SAS par minute', page)
    assert re.search(r'class="attente"', page)


def test_hosts_add_up_and_gaps_stay_gaps(app: Flask, engine: Engine) -> None:
    def searches(count: float) -> dict:
        return {"latency": {"sas-individual": {"1.0": count, "7.0": count, "+Inf": count}},
                "requests": {"all": {"2xx": count}}, "outbox": {"pending": 0, "parked": 0}}

    for host, counts in (("web-1", (10, 15)), ("web-2", (100, 102))):
        _sample(engine, host, 30, searches(counts[0]))
        _sample(engine, host, 29, searches(counts[1]))
    _sample(engine, "web-1", 3, searches(1))  # restarted: counters from zero
    _sample(engine, "web-1", 2, searches(4))
    page = text(operator_client(app, "admin@centre.fr", "administrator").get("/supervision"))
    assert re.search(r'<dd id="recherches">\s*11\s*</dd>', page)  # 5 + 2 + 4 (not 1 - 15)
    assert "Serveurs mesurés : web-1, web-2" in page
    # The bin of 29 minutes ago has no measured neighbour: a lone point, not a line drawn
    # across the unmeasured half hour to the bins of the last minutes.
    assert '<circle class="p50"' in page
    assert not re.search(r'<polyline class="p50" points="[^"]*"', page.split(
        '<circle class="p50"')[0])


def test_the_sampler_writes_one_row_per_host_and_minute_and_forgets_after_a_day(
        app: Flask, engine: Engine) -> None:  # `app`: the tables emptied
    sampler = Sampler(engine, host="web-1", registry=REGISTRY)
    _sample(engine, "web-1", 26 * 60, {"latency": {}, "requests": {}})
    sampler()
    sampler()  # the same minute again (a second worker of the host): nothing more
    with engine.connect() as conn:
        rows = conn.execute(select(metric_samples.c.taken_at)).all()
        count = conn.execute(select(func.count()).select_from(metric_samples)).scalar_one()
    assert count == 1 and rows[0].taken_at >= utc_now() - timedelta(minutes=2)


def test_the_worker_samples_what_gunicorn_counted(engine: Engine, database_url: str,
                                                  app: Flask, tmp_path: Path) -> None:
    """End to end: gunicorn's workers count SAS searches into PROMETHEUS_MULTIPROC_DIR, the
    delivery worker of the same host reads them there (its first snapshot at start) and
    writes the row the page draws from, and beats for /readyz."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    environment = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with LiveServer(database_url, tmp_path / "gunicorn.log", env=environment) as server:
        for _ in range(3):
            with urllib.request.urlopen(f"{server.base_url}/{ps_search([MARTIN]).url}"):
                pass
        worker = start_worker({**os.environ, **environment, "DATABASE_URL": database_url},
                              tmp_path / "worker.log")
        try:
            wait_until(lambda: _samples(engine), 60, "the worker's first snapshot")
            with urllib.request.urlopen(server.base_url.removesuffix("/fhir") + "/readyz") as r:
                assert json.load(r)["checks"]["worker"]["ok"] is True
        finally:
            assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()
    (sample,) = _samples(engine)
    assert sample["latency"]["sas-individual"]["+Inf"] == 3.0
    assert sample["requests"]["sas-individual"]["2xx"] == 3.0
    assert sample["outbox"] == {"pending": 0, "parked": 0, "oldest_age": 0.0}


def _samples(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [json.loads(row.sample) for row in conn.execute(select(metric_samples))]
