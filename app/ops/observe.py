"""Every request observed once: its id (X-Request-ID, in and out), its latency and status
in the Prometheus metrics, and one structured log line without personal data.

The label of a request is its FHIR interaction (from the URL rule and the method), with
the search variant that answers it (the SAS searches are their own series); outside the
FHIR API, the blueprint that served it (web, oauth, health…).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from sqlalchemy import Engine, event

from app.ops.meters import (
    DB_CONNECTIONS_OPENED,
    DB_POOL_CAPACITY,
    DB_POOL_CHECKED_OUT,
    NO_VARIANT,
    REQUEST_DURATION,
    REQUESTS,
)
from app.ops.request_id import HEADER, accepted_or_new, current_request_id
from app.search.registry import SUPPORTED_TYPES
from app.search.variants import recognised
from app.state import current_state

log = logging.getLogger("app.requests")

# (URL rule below /fhir, method) → FHIR interaction (R4 codes; `operation` for $validate).
FHIR_INTERACTIONS = {
    ("/metadata", "GET"): "capabilities",
    ("", "POST"): "transaction",  # batch or transaction Bundle
    ("/_history", "GET"): "history-system",
    ("/<resource_type>", "GET"): "search-type",
    ("/<resource_type>/_search", "POST"): "search-type",
    ("/<resource_type>", "POST"): "create",
    ("/<resource_type>", "PUT"): "update",  # conditional
    ("/<resource_type>", "DELETE"): "delete",  # conditional
    ("/<resource_type>/_history", "GET"): "history-type",
    ("/<resource_type>/<resource_id>", "GET"): "read",
    ("/<resource_type>/<resource_id>", "PUT"): "update",
    ("/<resource_type>/<resource_id>", "DELETE"): "delete",
    ("/<resource_type>/<resource_id>/_history", "GET"): "history-instance",
    ("/<resource_type>/<resource_id>/_history/<version>", "GET"): "vread",
    ("/<resource_type>/$validate", "POST"): "operation",
    ("/<resource_type>/<resource_id>/$validate", "POST"): "operation",
}


def labels() -> tuple[str, str]:
    """(interaction, variant) of the current request."""
    rule = request.url_rule
    if rule is None:
        return "unmatched", NO_VARIANT
    if request.blueprint != "fhir":
        return request.blueprint or "app", NO_VARIANT
    path = rule.rule.removeprefix("/fhir").rstrip("/")
    interaction = FHIR_INTERACTIONS.get((path, request.method), "other")
    if interaction != "search-type":
        return interaction, NO_VARIANT
    return interaction, _variant()


def _variant() -> str:
    resource_type = (request.view_args or {}).get("resource_type", "")
    params = list(request.args.items(multi=True))
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        params.extend(request.form.items(multi=True))
    try:
        variant = recognised(current_state().search_variants, resource_type, params)
    except Exception:  # labelling must never fail a request
        log.debug("search variant not recognised", exc_info=True)
        return NO_VARIANT
    return variant.name if variant is not None else NO_VARIANT


def _resource_type() -> str | None:
    # Only known type names: anything else in the path is the client's text.
    value = (request.view_args or {}).get("resource_type")
    return value if value in SUPPORTED_TYPES else None


def _start() -> None:
    g.ops_started = time.perf_counter()
    request_id = accepted_or_new(request.headers.get(HEADER))
    g.ops_request_id = request_id
    g.ops_request_id_token = current_request_id.set(request_id)


def _finish(response: Response) -> Response:
    started = g.get("ops_started")
    request_id = g.get("ops_request_id")
    if started is None or request_id is None:  # a request our hook did not see start
        return response
    elapsed = time.perf_counter() - started
    interaction, variant = labels()
    REQUEST_DURATION.labels(interaction, variant).observe(elapsed)
    REQUESTS.labels(interaction, variant, str(response.status_code)).inc()
    response.headers[HEADER] = request_id
    log.info("%s %s %s", request.method, request.url_rule.rule if request.url_rule else "-",
             response.status_code, extra={"request_id": request_id, "fields": {
                 "event": "request", "method": request.method,
                 "route": request.url_rule.rule if request.url_rule else None,
                 "resource_type": _resource_type(), "interaction": interaction,
                 "variant": variant, "status": response.status_code,
                 "duration_ms": round(elapsed * 1000, 2)}})
    return response


def _forget(_error: BaseException | None) -> None:
    token = g.pop("ops_request_id_token", None)
    if token is not None:
        current_request_id.reset(token)


def _checked_out(*_args: object) -> None:
    DB_POOL_CHECKED_OUT.inc()


def _checked_in(*_args: object) -> None:
    DB_POOL_CHECKED_OUT.dec()


def _opened(*_args: object) -> None:
    DB_CONNECTIONS_OPENED.inc()


def observe_pool(engine: Engine) -> None:
    """Pool gauges from the pool's own events (once per engine: apps may share one)."""
    if event.contains(engine, "checkout", _checked_out):
        return
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "connect", _opened)
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        DB_POOL_CAPACITY.set(size() + max(overflow, 0))


def install(app: Flask) -> None:
    """First of the app-wide hooks: the latency covers throttling and authentication."""
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_forget)
    observe_pool(app.extensions["agenda"].engine)
