"""The delivery worker: claim, send, record; as many processes and hosts as needed.

Each claim is its own short transaction (a lease, so a killed worker's message comes back),
the HTTP call happens outside any transaction, and the outcome is recorded in another.
Between deliveries the loop also runs periodic housekeeping (`Periodic`), such as starting
the refresh of the client CRLs (app/auth/crl_refresh.py, which downloads in its own thread).
"""

from __future__ import annotations

import logging
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
        result = self.delivery.send(message)
        with self.state.writing(WORKER_AUTHOR) as repo:
            self._record(repo, message, result)
        return True

    def _record(self, repo: Repository, message: Message, result: Result) -> None:
        conn = repo.conn
        if not outbox.still_ours(conn, message):
            # Our lease ran out and another worker took the message over: its outcome wins.
            log.warning("Outbox message %s was taken over by another worker; outcome dropped",
                        message.pk)
            return
        if result.ok:
            outbox.delivered(conn, message.pk, result.status or 200)
            self.delivery.health(repo, message, None)
            return
        horizon = message.created_at + timedelta(hours=self.settings.outbox_give_up_hours)
        if not result.retryable:
            log.warning("Parking outbox message %s (%s): %s", message.pk, message.url,
                        result.detail[:200])
            outbox.park(conn, message.pk, result.detail, result.status)
        elif utc_now() >= horizon:
            log.warning("Giving up on outbox message %s after %s attempts", message.pk,
                        message.attempts)
            outbox.park(conn, message.pk, f"gave up: {result.detail}", result.status)
        else:
            delay = backoff(message.attempts, self.settings.outbox_base_delay_seconds,
                            self.settings.outbox_max_delay_seconds, self.rng)
            if result.retry_after:
                ceiling = max(self.settings.outbox_max_delay_seconds,
                              self.settings.outbox_base_delay_seconds)
                delay = max(delay, timedelta(seconds=min(result.retry_after, ceiling)))
            outbox.retry_later(conn, message.pk, delay, result.detail, result.status)
        self.delivery.health(repo, message, result)


def serve_forever(state: AppState) -> None:
    """Run until SIGTERM/SIGINT; the message in flight is finished, then the worker exits."""
    worker = Worker(state, periodic=housekeeping(state.settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stopping.set())
    log.info("Delivery worker started (poll every %.2fs)", state.settings.worker_poll_seconds)
    worker.run()
