"""The real application served by gunicorn in a subprocess, for end-to-end tests."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.support.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60


def _gunicorn_options() -> list[str]:
    from gunicorn.config import Config

    # gunicorn >= 27 opens a control socket at one fixed path per user: concurrent servers
    # (tests, newman, `make run`) would take it from each other.
    return ["--no-control-socket"] if "control_socket_disable" in Config().settings else []


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel sends SIGTERM to gunicorn when the test
    # process dies, even by SIGKILL, so no server outlives a crashed test run (Linux only).
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM to the process group a server was started in, SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LiveServer:
    """`gunicorn wsgi:app` on a free port of 127.0.0.1 against `database_url`.

    `args` and `env` add gunicorn options and environment variables; with `tls` (the client
    context the readiness check uses), the server is reached over https."""

    def __init__(self, database_url: str, log_path: Path, workers: int = 2, *,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.args, self.env, self.tls = tuple(args), dict(env or {}), tls
        self.port = free_port()
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/fhir"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        # The web pages on the same origin, unless `env` says otherwise (the production
        # profile refuses to start without PUBLIC_WEB_URL).
        env = {**os.environ, "PUBLIC_WEB_URL": self.base_url.removesuffix("/fhir"),
               **self.env, "DATABASE_URL": self.database_url, "FHIR_BASE_URL": self.base_url}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--chdir", str(REPO_ROOT),
                 "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers),
                 "--graceful-timeout", "5", *_gunicorn_options(),
                 # The settings of every server; a `-c` in `args` replaces them.
                 "-c", str(REPO_ROOT / "gunicorn.conf.py"), *self.args, "wsgi:app"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Own process group: stop() signals the master and its workers together.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self._process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/metadata", timeout=5,
                                            context=self.tls) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.base_url}/metadata did not answer 200 within "
                           f"{START_TIMEOUT_SECONDS}s ({last_error}):\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_group(process)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
