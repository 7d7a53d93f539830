"""One outbox message sent over HTTP with `requests`, and the answer classified: delivered,
worth retrying (network errors, 5xx, 408/425/429 with their Retry-After), or refused."""

from __future__ import annotations

import math

import requests

from app.config import Settings
from app.storage.repository import Repository
from app.subscriptions.channels.base import Result
from app.subscriptions.outbox import Message

RETRYABLE_4XX = {408, 425, 429}
UNSENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
              requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader,
              UnicodeError)


def send(session: requests.Session, message: Message, timeout: float) -> Result:
    method, url = message.request()
    try:
        response = session.request(
            method, url, headers=message.headers,
            data=message.body.encode() if message.body is not None else None,
            timeout=timeout, allow_redirects=False)
    except UNSENDABLE as exc:
        # The request itself is wrong (endpoint, header): retrying cannot help.
        return Result(False, False, None, f"{type(exc).__name__}: {exc}")
    except requests.RequestException as exc:
        return Result(False, True, None, f"{type(exc).__name__}: {exc}")
    detail = response.text[:4000]
    if 200 <= response.status_code < 300:
        return Result(True, False, response.status_code, detail)
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_4XX
    return Result(False, retryable, response.status_code,
                  f"HTTP {response.status_code}: {detail}",
                  _retry_after(response.headers.get("Retry-After")))


def _retry_after(raw: str | None) -> float | None:
    try:
        seconds = float(raw) if raw else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff is good enough
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class HttpChannel:
    """A channel that sends over one HTTP session of its own (bounded by
    OUTBOUND_TIMEOUT_SECONDS); subclasses say whom they serve and configure the session."""

    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()

    def owns(self, subscriber: str) -> bool:
        raise NotImplementedError

    def send(self, message: Message) -> Result:
        return send(self.session, message, self.settings.outbound_timeout_seconds)

    def health(self, repo: Repository, message: Message, failure: Result | None) -> None:
        return None

    def close(self) -> None:
        self.session.close()
