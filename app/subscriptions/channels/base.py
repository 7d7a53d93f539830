"""What every delivery channel provides, and what a delivery attempt gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.config import Settings
from app.storage.repository import Repository
from app.subscriptions.outbox import Message


@dataclass(frozen=True)
class Result:
    ok: bool
    retryable: bool
    status: int | None
    detail: str  # the answer body (e.g. an OperationOutcome) or the network error
    retry_after: float | None = None


class Channel(Protocol):
    name: str

    def owns(self, subscriber: str) -> bool:
        """Whether this channel delivers the messages of this outbox subscriber."""
        ...

    def send(self, message: Message) -> Result: ...

    def health(self, repo: Repository, message: Message, failure: Result | None) -> None:
        """Record what a delivery outcome says of the subscriber (same transaction as the
        outcome); `failure` is None after a success."""
        ...

    def close(self) -> None: ...


ChannelFactory = Callable[[Settings], Channel]
