"""Per-application state shared by requests and workers: settings, database engine, and
the plug-ins (interceptors, search variants, delivery channels)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Connection, Engine

from app.config import Settings
from app.db import read_transaction, write_transaction
from app.search.variants import SearchVariant
from app.storage.hooks import Interceptor
from app.storage.repository import Repository
from app.subscriptions.channels.base import ChannelFactory

BackgroundTask = Callable[["AppState"], tuple[float, Callable[[], object]]]


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    # The plug-ins, registered once by the app factory (app/__init__.py).
    interceptors: Sequence[Interceptor] = ()
    search_variants: Sequence[SearchVariant] = ()
    delivery_channels: Sequence[ChannelFactory] = ()
    # Work the delivery worker also does, every so often: (seconds, task) from the state.
    background_tasks: Sequence[BackgroundTask] = ()

    @contextmanager
    def writing(self, author: str | None = None,
                address: str | None = None) -> Iterator[Repository]:
        """A repository whose writes commit together at the end of the block."""
        with write_transaction(self.engine) as conn:
            repo = self._repository(conn, author, address, writable=True)
            yield repo
            repo.finish()
        _after(repo)

    @contextmanager
    def reading(self, author: str | None = None, address: str | None = None, *,
                autocommit: bool = False) -> Iterator[Repository]:
        """A repository for reads in one transaction; `autocommit=True` only for a read of
        one statement (no BEGIN/COMMIT round trips on PostgreSQL, see read_transaction)."""
        with read_transaction(self.engine, autocommit) as conn:
            repo = self._repository(conn, author, address, writable=False)
            yield repo
        _after(repo)

    def _repository(self, conn: Connection, author: str | None, address: str | None, *,
                    writable: bool) -> Repository:
        return Repository(conn, self.settings, self.interceptors, author,
                          writable=writable, client_address=address,
                          search_variants=self.search_variants)


def _after(repo: Repository) -> None:
    """What interceptors left for after the transaction (it committed: we got here)."""
    for task in repo.after_transaction:
        task()


def state_of(app: Flask) -> AppState:
    return app.extensions["agenda"]  # type: ignore[no-any-return]


def current_state() -> AppState:
    return state_of(current_app)
