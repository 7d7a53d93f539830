"""The service-level page (French, administrators): the last 24 h of SAS search latency
percentiles against the 1 s (ANS test kit) and 7 s (SAS platform time-out) lines, SAS and
API throughput, error rates, notification backlog and parked messages.

Drawn from the minute snapshots of the Prometheus metrics (app/ops/samples.py) that the
delivery worker writes; the page reads the database only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from app.auth.roles import Right, has_right
from app.clock import utc_now
from app.ops import charts
from app.ops.charts import Line, Scale, Threshold
from app.ops.samples import load
from app.ops.sla_series import Bin, bins, summary
from app.state import current_state
from app.web import security
from app.web.current import current_account, current_session, load_current, safe_next

supervision = Blueprint("supervision", __name__, template_folder="templates",
                        static_folder="static", static_url_path="/ops/static")
HOURS = 24
SAS_LIMITS = (Threshold(1.0, "1 s — seuil du kit de test ANS"),
              Threshold(7.0, "7 s — abandon par la plateforme SAS"))


@supervision.context_processor
def _template_globals() -> dict[str, Any]:
    # What base.html (app/web/templates) expects of every page.
    return {"csrf_token": security.csrf_token, "account": current_account()}


@supervision.before_request
def _guard() -> Any:
    if request.endpoint == "supervision.static":
        return None
    load_current()
    account, session = current_account(), current_session()
    if account is None or session is None:
        return redirect(url_for("web.login", next=safe_next(request.full_path.rstrip("?"))))
    if account.terms_pending:
        return redirect(url_for("web.terms", next=safe_next(request.full_path.rstrip("?"))))
    if not has_right(account, session, Right.VIEW_SUPERVISION):
        return render_template("erreur.html", status=403, message=(
            "Cette page est réservée aux administrateurs du service.")), 403
    return None


@supervision.after_request
def _headers(response: Response) -> Response:
    return security.add_headers(response)


def _points(day: list[Bin], value: Any) -> list[tuple[datetime, float | None]]:
    # Each bin is drawn at its middle.
    half = (day[1].start - day[0].start) / 2 if len(day) > 1 else timedelta(0)
    return [(item.start + half, value(item) if item.minutes else None) for item in day]


def _outbox_points(day: list[Bin], name: str) -> list[tuple[datetime, float | None]]:
    half = (day[1].start - day[0].start) / 2 if len(day) > 1 else timedelta(0)
    return [(item.start + half, getattr(item, name)) for item in day]


def graphs(day: list[Bin], start: datetime, end: datetime) -> dict[str, Any]:
    latency = [Line(f"p{round(q * 100)}", f"p{round(q * 100)}",
                    _points(day, lambda b, q=q: b.percentile(q))) for q in (0.5, 0.95, 0.99)]
    throughput = [
        Line("recherches SAS par minute", "sas",
             _points(day, lambda b: b.per_minute(b.sas_searches))),
        Line("requêtes FHIR par minute", "api",
             _points(day, lambda b: b.per_minute(b.requests("all")[0])))]
    errors = [Line("recherches SAS en erreur (5xx), %", "sas",
                   _points(day, lambda b: b.error_rate("sas"))),
              Line("requêtes FHIR en erreur (5xx), %", "api",
                   _points(day, lambda b: b.error_rate("all")))]
    backlog = [Line("notifications en attente", "attente", _outbox_points(day, "pending")),
               Line("notifications bloquées (parquées)", "bloques",
                    _outbox_points(day, "parked"))]
    return {
        "latency": charts.chart(
            "Temps de réponse des recherches SAS (p50, p95, p99) sur 24 h", latency,
            start, end, Scale(0.001, 10.0, log=True), unit="s", thresholds=SAS_LIMITS),
        "throughput": charts.chart(
            "Débit : recherches SAS et requêtes FHIR par minute", throughput, start, end,
            charts.linear_scale(throughput)),
        "errors": charts.chart(
            "Taux d'erreur serveur (5xx), en %", errors, start, end,
            charts.linear_scale(errors, floor=5.0), unit=" %"),
        "backlog": charts.chart(
            "Notifications en attente et bloquées", backlog, start, end,
            charts.linear_scale(backlog)),
    }


@supervision.get("/supervision")
def page() -> str:
    end = utc_now()
    start = end - timedelta(hours=HOURS)
    with current_state().engine.connect() as conn:
        snapshots = load(conn, start - timedelta(minutes=5))
    day = bins(snapshots, end, HOURS)
    return render_template("ops/supervision.html", summary=summary(day),
                           graphs=graphs(day, day[0].start, end), hosts=sorted(snapshots),
                           sampled=any(item.minutes for item in day))
