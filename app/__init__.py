"""SAS-ready FHIR R4 agenda server: the Flask application factory."""

from __future__ import annotations

from flask import Flask, Response, redirect
from sqlalchemy import Engine

from app.accounts.service import sync_regulator
from app.audit.trail import AuditTrail
from app.auth.access import AccessGuard
from app.config import Settings
from app.db import make_engine
from app.fhir.bulk_jobs import run_bulk_jobs
from app.gap.background import derive_rule_slots
from app.gap.rules import AvailabilityRules
from app.sas.cpts_projection import SasCptsProjection
from app.sas.cpts_search import SasCptsSearch
from app.sas.individual_search import SasIndividualSearch
from app.sas.place_projection import SasPlaceProjection
from app.sas.regulators import RegulatorRules
from app.sas.slot_projection import SasSlotProjection
from app.sas.sos_projection import SasSosProjection
from app.sas.sos_search import SasSosSearch
from app.scheduling.booking import SlotBooking
from app.scheduling.overlap import OverlapRule
from app.state import AppState
from app.subscriptions.channels.rest_hook import RestHookChannel
from app.subscriptions.channels.sas import SasChannel
from app.subscriptions.rest_hook import SubscriptionMatcher, SubscriptionRules
from app.subscriptions.sas_notifier import SasNotifier
from app.validation.interceptor import ValidationInterceptor


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["agenda"] = AppState(
        settings=settings,
        engine=engine or make_engine(settings.database_url, echo=settings.sql_echo),
        # Order matters: access control, rules and validation first, then what reacts to
        # the stored version.
        interceptors=[AccessGuard(), ValidationInterceptor(), AvailabilityRules(),
                      SubscriptionRules(),
                      RegulatorRules(sync_regulator), SlotBooking(), OverlapRule(),
                      SasSlotProjection(), SasPlaceProjection(), SasCptsProjection(),
                      SasSosProjection(), SasNotifier(),
                      SubscriptionMatcher(), AuditTrail()],
        # Searches answered in a shape of their own (app/search/variants.py).
        # The CPTS variant first: the individual one takes any Slot search SAS makes.
        search_variants=[SasCptsSearch(), SasIndividualSearch(), SasSosSearch()],
        # How outbox messages reach their subscribers (app/subscriptions/channels/).
        delivery_channels=[SasChannel, RestHookChannel],
        # What the worker does besides deliveries (app/state.py BackgroundTask).
        background_tasks=[derive_rule_slots, run_bulk_jobs],
    )
    from app.auth.install import install as install_auth
    from app.fhir import capability, hardening, http_errors
    from app.fhir.routes import fhir
    from app.gap.feeds import feeds
    from app.metrics import metrics
    from app.ops import install as install_ops
    from app.subscriptions.admin import admin
    from app.web import web

    app.register_blueprint(fhir)
    app.register_blueprint(web)
    app.register_blueprint(feeds)  # iCalendar feeds (app/gap/feeds.py)
    app.register_blueprint(admin)
    app.register_blueprint(metrics)
    # First of the app-wide hooks: request ids and latencies cover the ones below.
    install_ops(app, capability.capability_statement)
    http_errors.install(app)
    hardening.install(app, settings.rate_limit_per_minute)
    install_auth(app, settings)  # after throttling: refused callers still count

    @app.get("/")
    def home() -> Response:
        return redirect("/fhir/metadata")  # type: ignore[return-value]

    return app
