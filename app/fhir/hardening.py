"""Defences of the FHIR endpoint: body depth, per-client rate limits, response headers."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from flask import Flask, Response, request

from app.outcome import BadRequest, FhirError

MAX_JSON_DEPTH = 64


class TooManyRequests(FhirError):
    status, code = 429, "throttled"


def check_depth(document: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse absurdly nested JSON before anything recursive walks it, and NUL characters,
    which no FHIR string may hold and PostgreSQL cannot store. (Only containers go on the
    stack: a Bundle of a thousand resources is walked in a few milliseconds.)"""
    if isinstance(document, str) and "\x00" in document:
        raise _nul()
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.values()
            if any("\x00" in key for key in node):
                raise _nul()
        elif isinstance(node, list):
            items = node
        else:
            continue
        # The container sits at `depth`, what it holds one level deeper.
        if depth > limit or (depth == limit and node):
            raise BadRequest(f"The body is nested deeper than {limit} levels", code="structure")
        for value in items:
            if isinstance(value, (dict, list)):
                stack.append((value, depth + 1))
            elif isinstance(value, str) and "\x00" in value:
                raise _nul()


def _nul() -> BadRequest:
    return BadRequest("The body contains a NUL character", code="invalid")


class RateLimiter:
    """A token bucket per client (in this process): `per_minute` requests, bursts allowed.

    Each gunicorn worker keeps its own buckets, so the effective limit is per worker; put a
    shared limiter in the reverse proxy when an exact global limit matters."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or max(1, per_minute // 2))
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go on, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            tokens, stamp = self.buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self.buckets[client] = (tokens - 1, now)
                return 0.0
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # health data never sits in shared caches
}


def install(app: Flask, per_minute: int) -> None:
    limiter = RateLimiter(per_minute) if per_minute > 0 else None

    @app.before_request
    def _throttle() -> None:
        if not request.path.startswith("/fhir"):
            return
        form = (request.form.items(multi=True)
                if request.mimetype == "application/x-www-form-urlencoded" else [])
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in [
                *request.args.items(multi=True), *form]):
            raise BadRequest("The request contains a NUL character", code="invalid")
        if limiter is None:
            return
        wait = limiter.take(request.remote_addr or "?")
        if wait:
            raise TooManyRequests(
                f"Too many requests from this client: retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))})

    @app.after_request
    def _headers(response: Response) -> Response:
        if request.path.startswith("/fhir"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response
