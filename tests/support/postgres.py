"""Throwaway PostgreSQL servers for the tests and the scripts.

A server lives in a fresh temporary directory, listens on a free port of 127.0.0.1, trusts
every local connection and is tuned for speed, not durability.

    python -m tests.support.postgres [--dbname NAME]

starts one, prints its URL and keeps it running until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

SUPERUSER = "postgres"
# initdb and postgres refuse to run as root: as root they run as this system user.
SERVICE_USER = "postgres"
START_TIMEOUT_SECONDS = 60
PORT_ATTEMPTS = 5
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Runs in its own session, so that signals sent to our process group spare it. Our end of
# its stdin pipe closes when we exit, however we exit (even SIGKILL): it then stops the
# server and removes the directory, unless stop() already did.
_WATCHDOG = """
import json, os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
stop_command, directory = json.loads(sys.argv[1]), sys.argv[2]
sys.stdin.buffer.read()
if os.path.exists(os.path.join(directory, "data", "postmaster.pid")):
    subprocess.run(stop_command, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
shutil.rmtree(directory, ignore_errors=True)
"""


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started."""


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: "16" > "15" > "9.6", numerically.
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl: $PG_BINDIR, Debian's newest, pg_config, PATH."""
    candidates: list[Path] = []
    if override := os.environ.get("PG_BINDIR"):
        candidates.append(Path(override))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    if pg_config := shutil.which("pg_config"):
        try:
            result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                    check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            candidates.append(Path(result.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise PostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin, "
        "`pg_config --bindir` or PATH; install them with `make postgres-tools` "
        "(apt-get install postgresql) or point PG_BINDIR at them")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client_env() -> dict[str, str]:
    # PG* variables of the caller (PGHOST, PGPASSWORD, PGOPTIONS...) must not leak into
    # commands aimed at our server; LC_ALL=C keeps messages parseable.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _read(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace").strip()


class ThrowawayPostgres:
    """A private PostgreSQL server, removed with its data by stop() or at interpreter exit.

    Use ``start()``/``stop()`` or ``with ThrowawayPostgres() as server: ...``.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir if bindir is not None else find_bindir()
        self.port: int | None = None
        self.directory: Path | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ThrowawayPostgres:
        with self._lock:
            if self.directory is not None:
                return self
            self.directory = self._make_directory()
        atexit.register(self.stop)
        try:
            self._start_watchdog()
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its directory. Idempotent."""
        with self._lock:
            directory, self.directory, self.port = self.directory, None, None
            watchdog, self._watchdog = self._watchdog, None
        if directory is None:
            return
        atexit.unregister(self.stop)
        try:
            if (directory / "data" / "postmaster.pid").exists():
                subprocess.run(self._stop_command(directory), cwd=directory, env=_client_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=START_TIMEOUT_SECONDS, check=False)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            if watchdog is not None:
                self._release_watchdog(watchdog)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- use -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.port is not None

    def url(self, dbname: str = "postgres") -> str:
        if self.port is None:
            raise PostgresError("the server is not running")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, exist_ok: bool = False) -> str:
        """Create database `name` and return its URL."""
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"unsupported database name: {name!r}")
        if self.port is None:
            raise PostgresError("the server is not running")
        result = subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", SUPERUSER, name],
            capture_output=True, text=True, env=_client_env(), timeout=START_TIMEOUT_SECONDS,
            check=False)
        if result.returncode != 0 and not (exist_ok and "already exists" in result.stderr):
            raise PostgresError(f"createdb {name} failed: {result.stderr.strip()}")
        return self.url(name)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _owner_command(self, argv: Sequence[str]) -> list[str]:
        if not self._as_root():
            return list(argv)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", SERVICE_USER, "--", *argv]

    def _stop_command(self, directory: Path) -> list[str]:
        return self._owner_command([str(self.bindir / "pg_ctl"), "stop", "-D",
                                    str(directory / "data"), "-m", "immediate", "-w"])

    def _make_directory(self) -> Path:
        if not self._as_root():
            return Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
        try:
            service = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, but there is no {SERVICE_USER!r} system user to run "
                "PostgreSQL as (it comes with the Debian postgresql package)") from None
        # Not $TMPDIR: it may sit under a directory (like /root) the service user cannot enter.
        directory = Path(tempfile.mkdtemp(prefix="throwaway-pg-", dir="/tmp"))
        os.chown(directory, service.pw_uid, service.pw_gid)
        return directory

    def _start_watchdog(self) -> None:
        assert self.directory is not None
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, json.dumps(self._stop_command(self.directory)),
             str(self.directory)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=_client_env(), start_new_session=True)

    @staticmethod
    def _release_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
        if watchdog.stdin is not None:
            watchdog.stdin.close()
        try:
            watchdog.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()

    def _run_owner(self, argv: Sequence[str], what: str) -> None:
        assert self.directory is not None
        # Output goes to files, not pipes: a daemon that inherited a pipe would keep us
        # waiting for its EOF forever.
        with tempfile.TemporaryFile() as output:
            try:
                result = subprocess.run(
                    self._owner_command(argv), cwd=self.directory, env=_client_env(),
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                    timeout=START_TIMEOUT_SECONDS * 2, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PostgresError(f"{what} failed: {exc}") from exc
            if result.returncode != 0:
                raise PostgresError(f"{what} failed (exit {result.returncode}):\n{_read(output)}")

    def _initdb(self) -> None:
        assert self.directory is not None
        self._run_owner([str(self.bindir / "initdb"), "-D", str(self.directory / "data"),
                         "-A", "trust", "-U", SUPERUSER, "--no-locale", "-E", "UTF8",
                         "--no-sync"], "initdb")

    def _start_server(self) -> None:
        assert self.directory is not None
        log = self.directory / "server.log"
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            options = " ".join([
                f"-p {port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ])
            try:
                self._run_owner([str(self.bindir / "pg_ctl"), "start", "-w",
                                 "-t", str(START_TIMEOUT_SECONDS), "-D",
                                 str(self.directory / "data"), "-l", str(log), "-o", options],
                                "pg_ctl start")
            except PostgresError as exc:
                server_log = _tail(log)
                # The port may have been taken between free_port() and the bind.
                if attempt < PORT_ATTEMPTS and "could not bind" in server_log:
                    continue
                raise PostgresError(f"{exc}\nserver log ({log}):\n{server_log}") from exc
            self.port = port
            return


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.postgres",
        description="Start a throwaway PostgreSQL server, print its URL, and keep it running "
                    "until SIGTERM or SIGINT.")
    parser.add_argument("--dbname", default="postgres",
                        help="database to create if missing and print the URL of")
    args = parser.parse_args(argv)
    # Handlers first, so that a signal during start-up still removes the server.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    try:
        with ThrowawayPostgres() as server:
            url = (server.create_database(args.dbname, exist_ok=True)
                   if args.dbname != "postgres" else server.url())
            print(url, flush=True)
            while True:
                signal.pause()
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SystemExit:
        # SIGTERM/SIGINT, the normal way out; the server is stopped by now.
        return 0


if __name__ == "__main__":
    sys.exit(main())
