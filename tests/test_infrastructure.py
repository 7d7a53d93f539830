"""The test infrastructure itself: throwaway PostgreSQL servers and backend parametrization."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.postgres import PostgresError, ThrowawayPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent


def _scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_postgres_server_answers_select_1(postgres_server: ThrowawayPostgres) -> None:
    assert _scalar(postgres_server.url(), "select 1") == 1


def test_create_database(postgres_server: ThrowawayPostgres) -> None:
    url = postgres_server.create_database("infra_check")
    assert url == postgres_server.url("infra_check")
    assert _scalar(url, "select current_database()") == "infra_check"
    assert postgres_server.create_database("infra_check", exist_ok=True) == url
    with pytest.raises(PostgresError, match="already exists"):
        postgres_server.create_database("infra_check")


def test_stop_removes_server_and_directory(postgres_server: ThrowawayPostgres) -> None:
    # postgres_server only ensures PostgreSQL is selected and available; this test runs its own.
    with ThrowawayPostgres() as server:
        directory, port = server.directory, server.port
        assert directory is not None and port is not None
        assert _scalar(server.url(), "show fsync") == "off"
    assert not server.running
    assert not directory.exists()
    assert not _accepts_connections(port)
    server.stop()  # idempotent


def test_command_line_runs_until_sigterm(postgres_server: ThrowawayPostgres) -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.support.postgres", "--dbname", "cli"],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/cli")
        assert _scalar(url, "select 1") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    assert not _accepts_connections(port)


def test_database_url_per_backend(db_backend: str, database_url: str) -> None:
    if db_backend == "sqlite":
        assert database_url.startswith("sqlite:///")
        assert _scalar(database_url, "select 1") == 1
    else:
        assert database_url.endswith("/fhir_test")
        assert _scalar(database_url, "select current_database()") == "fhir_test"
