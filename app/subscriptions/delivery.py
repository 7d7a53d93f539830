"""Send one outbox message over HTTP and classify the answer.

SAS is reached with mutual TLS (our client certificate and key; SAS's certificate checked
against the configured CA bundle); Subscription endpoints with ordinary TLS verification.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import requests

from app.config import Settings
from app.subscriptions.outbox import Message

RETRYABLE_4XX = {408, 425, 429}
UNSENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
              requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader,
              UnicodeError)


@dataclass(frozen=True)
class Result:
    ok: bool
    retryable: bool
    status: int | None
    detail: str  # the answer body (e.g. an OperationOutcome) or the network error
    retry_after: float | None = None


class Delivery:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sas = requests.Session()
        # Only our settings decide whom we trust for SAS: REQUESTS_CA_BUNDLE and friends in
        # the environment would otherwise silently replace the configured CA bundle.
        self.sas.trust_env = False
        if settings.sas_client_cert:
            self.sas.cert = ((settings.sas_client_cert, settings.sas_client_key)
                             if settings.sas_client_key else settings.sas_client_cert)
        if settings.sas_ca_bundle:
            self.sas.verify = settings.sas_ca_bundle
        self.hooks = requests.Session()

    def close(self) -> None:
        self.sas.close()
        self.hooks.close()

    def send(self, message: Message) -> Result:
        session = self.sas if message.subscriber == "sas" else self.hooks
        method, url = message.request()
        try:
            response = session.request(
                method, url, headers=message.headers,
                data=message.body.encode() if message.body is not None else None,
                timeout=self.settings.outbound_timeout_seconds, allow_redirects=False)
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
