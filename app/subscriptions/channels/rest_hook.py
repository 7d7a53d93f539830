"""The rest-hook channel: FHIR R4 Subscriptions of third-party agendas, notified at their
endpoint with ordinary TLS verification; a Subscription that keeps failing goes to status
`error`, and back to `active` when deliveries succeed again (R4)."""

from __future__ import annotations

import orjson

from app.ops.meters import SUBSCRIPTION_ERRORS
from app.storage.repository import Repository
from app.subscriptions.channels.base import Result
from app.subscriptions.channels.http import HttpChannel
from app.subscriptions.outbox import Message

PREFIX = "Subscription/"


class RestHookChannel(HttpChannel):
    name = "rest-hook"

    def owns(self, subscriber: str) -> bool:
        return subscriber.startswith(PREFIX)

    def health(self, repo: Repository, message: Message, failure: Result | None) -> None:
        subscription_id = message.subscriber.removeprefix(PREFIX)
        stored = repo.find("Subscription", subscription_id)
        if stored is None or stored.deleted:
            return
        subscription = orjson.loads(stored.content or "{}")
        if failure is None and subscription.get("status") == "error":
            subscription["status"] = "active"
            subscription.pop("error", None)
        elif (failure is not None and subscription.get("status") == "active"
              and (not failure.retryable
                   or message.attempts >= self.settings.subscription_error_threshold)):
            # A refused (parked) message is an error at once: nothing more goes out for
            # this resource until someone looks at it.
            subscription["status"] = "error"
            SUBSCRIPTION_ERRORS.labels(self.name).inc()
            subscription["error"] = f"Delivery to {message.url} failed {message.attempts} " \
                                    f"times: {failure.detail[:300]}"
        else:
            return
        repo.update("Subscription", subscription_id, subscription)
