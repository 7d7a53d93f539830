"""Per-application state shared by requests: settings, database engine, interceptors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy import Engine

from app.config import Settings
from app.db import read_transaction, write_transaction
from app.storage.repository import Interceptor, Repository


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    interceptors: list[Interceptor] = field(default_factory=list)

    @contextmanager
    def writing(self, author: str | None = None,
                address: str | None = None) -> Iterator[Repository]:
        """A repository whose writes commit together at the end of the block."""
        with write_transaction(self.engine) as conn:
            repo = Repository(conn, self.settings, self.interceptors, author)
            repo.client_address = address
            yield repo

    @contextmanager
    def reading(self, autocommit: bool = False) -> Iterator[Repository]:
        """A repository for reads in one transaction; `autocommit=True` only for a read of
        one statement (no BEGIN/COMMIT round trips on PostgreSQL, see read_transaction)."""
        with read_transaction(self.engine, autocommit) as conn:
            yield Repository(conn, self.settings, self.interceptors)


def state_of(app: Flask) -> AppState:
    return app.extensions["agenda"]  # type: ignore[no-any-return]


def current_state() -> AppState:
    return state_of(current_app)
