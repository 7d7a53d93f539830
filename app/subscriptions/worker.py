"""The delivery worker: claim, send, record; as many processes and hosts as needed.

Each claim is its own short transaction (a lease, so a killed worker's message comes back),
the HTTP call happens outside any transaction, and the outcome is recorded in another.
Between deliveries the loop also runs periodic housekeeping (`Periodic`), such as starting
the refresh of the client CRLs (app/auth/crl_refresh.py, which downloads in its own thread).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from app.auth import crl_refresh
from app.clock import utc_now
from app.config import Settings
from app.db import write_transaction
from app.ops.heartbeat import BEAT_SECONDS, Heartbeat
from app.ops.meters import DELIVERIES, DELIVERY_DURATION, retire
from app.ops.request_id import HEADER, current_request_id
from app.ops.samples import SAMPLE_SECONDS, Sampler
from app.state import AppState
from app.storage.repository import Repository
from app.subscriptions import outbox
from app.subscriptions.delivery import Delivery, Result
from app.subscriptions.outbox import Message

log = logging.getLogger(__name__)
WORKER_AUTHOR = "subscription-worker"


def backoff(attempts: int, base: float, ceiling: float, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter around the nominal delay (0.5×–1.5×)."""
    nominal = min(ceiling, base * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=nominal * rng.uniform(0.5, 1.5))


@dataclass
class Periodic:
    """A quick task the delivery loop runs every `seconds`, first at start; a slow one must
    hand its work to a thread, or deliveries wait."""

    seconds: float
    run: Callable[[], object]
    due: float = 0.0


def housekeeping(settings: Settings) -> list[Periodic]:
    """The periodic tasks of `fhir-agenda worker`."""
    # Throttled and due-checked by crl_refresh itself: asking every minute is cheap.
    return [Periodic(crl_refresh.CHECK_EVERY_SECONDS,
                     lambda: crl_refresh.refresh_in_background(settings))]


class Worker:
    def __init__(self, state: AppState, *, rng: random.Random | None = None,
                 periodic: Sequence[Periodic] = ()) -> None:
        self.state = state
        self.periodic = list(periodic)
        self.settings = state.settings
        self.delivery = Delivery(state.settings, state.delivery_channels)
        self.rng = rng or random.Random()
        self.stopping = threading.Event()
        timeout = self.settings.outbound_timeout_seconds
        self.lease = timedelta(seconds=2 * timeout + 5)

    def run(self, *, once: bool = False) -> int:
        """Deliver until stopped (or, with once, until nothing is due). Returns the count."""
        handled = 0
        try:
            while not self.stopping.is_set():
                self._housekeeping()
                if self.step():
                    handled += 1
                elif once:
                    break
                else:
                    self.stopping.wait(self.settings.worker_poll_seconds)
        finally:
            self.delivery.close()
        return handled

    def _housekeeping(self) -> None:
        moment = time.monotonic()
        for task in self.periodic:
            if moment >= task.due:
                task.due = moment + task.seconds
                try:
                    task.run()
                except Exception:  # housekeeping must not stop deliveries
                    log.exception("Periodic task %r failed", task.run)

    def step(self) -> bool:
        with write_transaction(self.state.engine) as conn:
            message = outbox.claim(conn, self.lease)
        if message is None:
            return False
        # The delivery logs under the id of the request that caused it (sent as a header).
        token = current_request_id.set(message_request_id(message))
        try:
            channel = self.delivery.channel_name(message)
            started = time.perf_counter()
            result = self.delivery.send(message)
            elapsed = time.perf_counter() - started
            with self.state.writing(WORKER_AUTHOR) as repo:
                outcome = self._record(repo, message, result)
            DELIVERY_DURATION.labels(channel).observe(elapsed)
            DELIVERIES.labels(channel, outcome).inc()
            log.info("delivery %s %s", outcome, result.status, extra={"fields": {
                "event": "delivery", "message": message.pk, "channel": channel,
                "outcome": outcome, "status": result.status, "attempt": message.attempts,
                "duration_ms": round(elapsed * 1000, 2)}})
        finally:
            current_request_id.reset(token)
        return True

    def _record(self, repo: Repository, message: Message, result: Result) -> str:
        """Record the outcome; says which: delivered, retry, parked or dropped."""
        conn = repo.conn
        if not outbox.still_ours(conn, message):
            # Our lease ran out and another worker took the message over: its outcome wins.
            log.warning("Outbox message %s was taken over by another worker; outcome dropped",
                        message.pk)
            return "dropped"
        if result.ok:
            outbox.delivered(conn, message.pk, result.status or 200)
            self.delivery.health(repo, message, None)
            return "delivered"
        horizon = message.created_at + timedelta(hours=self.settings.outbox_give_up_hours)
        outcome = "parked"
        if not result.retryable:
            log.warning("Parking outbox message %s (%s): %s", message.pk, message.url,
                        result.detail[:200])
            outbox.park(conn, message.pk, result.detail, result.status)
        elif utc_now() >= horizon:
            log.warning("Giving up on outbox message %s after %s attempts", message.pk,
                        message.attempts)
            outbox.park(conn, message.pk, f"gave up: {result.detail}", result.status)
        else:
            outcome = "retry"
            delay = backoff(message.attempts, self.settings.outbox_base_delay_seconds,
                            self.settings.outbox_max_delay_seconds, self.rng)
            if result.retry_after:
                ceiling = max(self.settings.outbox_max_delay_seconds,
                              self.settings.outbox_base_delay_seconds)
                delay = max(delay, timedelta(seconds=min(result.retry_after, ceiling)))
            outbox.retry_later(conn, message.pk, delay, result.detail, result.status)
        self.delivery.health(repo, message, result)
        return outcome


def message_request_id(message: Message) -> str:
    """The id the message carries (X-Request-ID of the request that queued it), else its own."""
    return next((value for name, value in message.headers.items()
                 if name.lower() == HEADER.lower()), f"outbox-{message.pk}")


def serve_forever(state: AppState) -> None:
    """Run until SIGTERM/SIGINT; the message in flight is finished, then the worker exits."""
    heartbeat = Heartbeat(state.engine)
    # The heartbeat tells /readyz a worker runs; the sampler keeps the SLA page's history.
    operations = [Periodic(BEAT_SECONDS, heartbeat),
                  Periodic(SAMPLE_SECONDS, Sampler(state.engine))]
    features = [Periodic(*task(state)) for task in state.background_tasks]
    worker = Worker(state, periodic=[*housekeeping(state.settings), *features, *operations])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stopping.set())
    log.info("Delivery worker started (poll every %.2fs)", state.settings.worker_poll_seconds)
    try:
        worker.run()
    finally:
        heartbeat.stop()
        retire(os.getpid())
