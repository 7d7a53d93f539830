"""A benchmark PostgreSQL server whose data directory survives the process that started it.

It reuses the test suite's `ThrowawayPostgres` (initdb, start as the `postgres` user when run
as root) but keeps the directory, writes the port next to it and tunes the server for bulk
loading and for a 2-core / 24 GiB machine.

    python -m bench.pgserver start --data-dir /work/pgbench-data   # prints the URL
    python -m bench.pgserver stop --data-dir /work/pgbench-data
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.postgres import (
    SERVICE_USER,
    START_TIMEOUT_SECONDS,
    PostgresError,
    ThrowawayPostgres,
    _client_env,
)

# Appended to postgresql.conf at initdb. `-o` options of ThrowawayPostgres (port, fsync=off,
# synchronous_commit=off, full_page_writes=off) still apply on top of these.
TUNING = """
# --- bench/pgserver.py ---
shared_buffers = 4GB
effective_cache_size = 16GB
work_mem = 32MB
maintenance_work_mem = 1GB
max_parallel_maintenance_workers = 2
random_page_cost = 1.1
wal_level = minimal
max_wal_senders = 0
max_wal_size = 16GB
checkpoint_timeout = 30min
wal_buffers = 64MB
"""


class KeptPostgres(ThrowawayPostgres):
    """ThrowawayPostgres on a fixed directory, never removed, reused when already there."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.root = data_dir.resolve()

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    def start(self) -> KeptPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        self._give_to_service_user(self.root)
        self.directory = self.root
        if not (self.root / "data" / "PG_VERSION").exists():
            self._initdb()
            with open(self.root / "data" / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(TUNING)
        if self._running_port() is None:
            self._start_server()
            assert self.port is not None
            self.port_file.write_text(str(self.port))
        return self

    def stop(self) -> None:
        """Clean shutdown (a checkpoint, no crash recovery at the next start); data kept."""
        if (self.root / "data" / "postmaster.pid").exists():
            subprocess.run(self._owner_command([
                str(self.bindir / "pg_ctl"), "stop", "-D", str(self.root / "data"), "-m",
                "fast", "-w", "-t", str(START_TIMEOUT_SECONDS * 5)]),
                cwd=self.root, env=_client_env(), check=False)
        self.port = None

    def _running_port(self) -> int | None:
        if not self.port_file.exists() or not (self.root / "data" / "postmaster.pid").exists():
            return None
        status = subprocess.run(self._owner_command([
            str(self.bindir / "pg_ctl"), "status", "-D", str(self.root / "data")]),
            cwd=self.root, env=_client_env(), capture_output=True, check=False)
        if status.returncode != 0:
            return None
        self.port = int(self.port_file.read_text().strip())
        return self.port

    def _give_to_service_user(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            service = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise PostgresError(f"no {SERVICE_USER!r} system user to run PostgreSQL") from None
        os.chown(path, service.pw_uid, service.pw_gid)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgserver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "url"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dbname", default="bench")
    args = parser.parse_args(argv)
    server = KeptPostgres(args.data_dir)
    if args.action == "stop":
        server.stop()
        return 0
    if args.action == "url":
        port = server._running_port()
        if port is None:
            print("not running", file=sys.stderr)
            return 1
        print(server.url(args.dbname))
        return 0
    server.start()
    print(server.create_database(args.dbname, exist_ok=True) if args.dbname != "postgres"
          else server.url())
    return 0


if __name__ == "__main__":
    sys.exit(main())
