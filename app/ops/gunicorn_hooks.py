"""What every gunicorn configuration of the service adds (gunicorn.conf.py,
deploy/gunicorn_tls.conf.py): its own log lines in the application's format, and the
Prometheus files of a dead worker process retired (its live gauges stop counting)."""

from __future__ import annotations

from app.ops.logs import gunicorn_logconfig
from app.ops.meters import retire

logconfig_dict = gunicorn_logconfig()


def child_exit(_server: object, worker: object) -> None:
    """gunicorn server hook: a worker process has exited."""
    retire(worker.pid)  # type: ignore[attr-defined]
