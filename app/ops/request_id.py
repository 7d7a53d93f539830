"""The id of the request (or delivery) being served: in every log line, answered in the
X-Request-ID header, and sent on the outbound calls it causes.

A leaf module: the outbox stores the id with the messages a request enqueues, so that the
worker's delivery carries the header of the request that caused it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# What we accept from a client or a proxy: short and harmless in a log line or a header.
ACCEPTED = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_or_new(given: str | None) -> str:
    """The caller's id when it is well formed (a proxy's, to follow a request across
    systems), else a fresh one."""
    if given and ACCEPTED.fullmatch(given):
        return given
    return new_request_id()


def with_request_id(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the current request id, unless absent or already given."""
    request_id = current_request_id.get()
    if request_id is None or any(name.lower() == HEADER.lower() for name in headers):
        return headers
    return {**headers, HEADER: request_id}
