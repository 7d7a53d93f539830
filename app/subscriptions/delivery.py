"""Hand each outbox message to the registered channel that owns its subscriber."""

from __future__ import annotations

from collections.abc import Sequence

from app.config import Settings
from app.storage.repository import Repository
from app.subscriptions.channels.base import Channel, ChannelFactory, Result
from app.subscriptions.outbox import Message

__all__ = ["Delivery", "Result"]


class Delivery:
    def __init__(self, settings: Settings, channels: Sequence[ChannelFactory]) -> None:
        self.channels: list[Channel] = [make(settings) for make in channels]

    def _channel(self, message: Message) -> Channel | None:
        return next((c for c in self.channels if c.owns(message.subscriber)), None)

    def channel_name(self, message: Message) -> str:
        channel = self._channel(message)
        return channel.name if channel is not None else "none"

    def send(self, message: Message) -> Result:
        channel = self._channel(message)
        if channel is None:  # e.g. a channel removed from the configuration since
            return Result(False, False, None, f"no delivery channel for subscriber "
                                              f"'{message.subscriber}'")
        return channel.send(message)

    def health(self, repo: Repository, message: Message, failure: Result | None) -> None:
        channel = self._channel(message)
        if channel is not None:
            channel.health(repo, message, failure)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
