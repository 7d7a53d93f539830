"""Shared fixtures: every database test runs once per backend selected by TEST_DATABASES.

Fixtures:
- ``db_backend``      session, parametrized "sqlite" / "postgresql" (ids [sqlite], [postgresql])
- ``database_url``    session, per backend: URL of the test database
- ``engine``          session, per backend: SQLAlchemy engine, migrated to head once
- ``app``             function: Flask app on ``engine``, all tables emptied before the test
- ``client``          function: ``app.test_client()``
- ``live_server``     function: base URL (``http://127.0.0.1:PORT/fhir``) of gunicorn serving the
                      same database, emptied before the test (the process is shared per module)
- ``postgres_server`` session: the ThrowawayPostgres instance
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from tests.support.live_server import LiveServer
from tests.support.postgres import PostgresError, ThrowawayPostgres

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

# Most tests exercise FHIR behaviour, not authentication: they run in the development
# profile (checks off). Security tests ask for SECURITY_PROFILE=production explicitly.
os.environ.setdefault("SECURITY_PROFILE", "development")

KNOWN_BACKENDS = ("sqlite", "postgresql")
TEST_DATABASE_NAME = "fhir_test"
TEST_BASE_URL = "http://localhost/fhir"


def _selected_backends() -> list[str]:
    raw = os.environ.get("TEST_DATABASES", ",".join(KNOWN_BACKENDS))
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


SELECTED_BACKENDS = _selected_backends()
_SERVER_KEY = pytest.StashKey[ThrowawayPostgres]()


def _interrupt_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # pytest turns KeyboardInterrupt into an orderly stop that runs fixture teardowns and
    # atexit handlers; the default SIGTERM action would skip both.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    unknown = sorted(set(SELECTED_BACKENDS) - set(KNOWN_BACKENDS))
    if unknown or not SELECTED_BACKENDS:
        raise pytest.UsageError(
            f"TEST_DATABASES={os.environ.get('TEST_DATABASES', '')!r}: expected a comma-separated "
            f"subset of {', '.join(KNOWN_BACKENDS)}")
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_backend") == "postgresql":
        return True
    return "postgres_server" in getattr(item, "fixturenames", ())


def _start_postgres(config: pytest.Config) -> ThrowawayPostgres:
    server = ThrowawayPostgres().start()
    config.stash[_SERVER_KEY] = server
    config.add_cleanup(server.stop)
    return server


def _postgres_failure(exc: Exception) -> str:
    return (f"PostgreSQL could not be started: {exc}\n"
            "Install it with `make postgres-tools`, or run TEST_DATABASES=sqlite pytest "
            "to skip the PostgreSQL runs.")


def pytest_collection_finish(session: pytest.Session) -> None:
    # Start PostgreSQL once, before any test runs, and only if a selected test needs it:
    # a failure stops the whole run up front instead of erroring test after test.
    config = session.config
    if config.option.collectonly or "postgresql" not in SELECTED_BACKENDS:
        return
    if not any(_needs_postgres(item) for item in session.items):
        return
    try:
        _start_postgres(config)
    except (PostgresError, OSError) as exc:
        pytest.exit(_postgres_failure(exc), returncode=pytest.ExitCode.TESTS_FAILED)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> ThrowawayPostgres:
    if "postgresql" not in SELECTED_BACKENDS:
        pytest.skip("postgresql is not in TEST_DATABASES")
    server = request.config.stash.get(_SERVER_KEY, None)
    if server is None:
        # Requested dynamically (getfixturevalue), so collection did not see it coming.
        try:
            server = _start_postgres(request.config)
        except (PostgresError, OSError) as exc:
            pytest.fail(_postgres_failure(exc), pytrace=False)
    return server


@pytest.fixture(scope="session", params=SELECTED_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(db_backend: str, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    if db_backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / f"{TEST_DATABASE_NAME}.db"
        return f"sqlite:///{path}"
    server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
    # exist_ok: pytest may rebuild this fixture if it has to switch backends back and forth.
    return server.create_database(TEST_DATABASE_NAME, exist_ok=True)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from app.db import make_engine
    from app.storage.migrate import upgrade

    db_engine = make_engine(database_url)
    upgrade(db_engine)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def app(engine: Engine, database_url: str) -> Flask:
    from app import create_app
    from app.config import Settings
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url, fhir_base_url=TEST_BASE_URL)
    flask_app = create_app(settings, engine=engine)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def live_server_process(database_url: str, engine: Engine,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # `engine` first: the database is migrated before gunicorn opens it.
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with LiveServer(database_url, log_path) as server:
        yield server


@pytest.fixture(scope="module")
def threaded_server(database_url: str, engine: Engine,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn with 4 processes of 8 threads: up to 32 requests in flight at once (races)."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with LiveServer(database_url, log_path, workers=4, args=["--threads", "8"]) as server:
        yield server


@pytest.fixture
def live_server(live_server_process: LiveServer, engine: Engine) -> str:
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    return live_server_process.base_url
