"""Structured logs: one JSON object per line on stderr, each with the request id.

Set up once per process by its entry point (wsgi.py, the command line): LOG_LEVEL (default
INFO) and LOG_FORMAT (`json`, the default, or `text` for a terminal). Events carry their
fields in `extra={"fields": {...}}`; messages must not carry personal data (names, emails,
query strings, bodies): ids, types, codes and durations only.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from app.ops.request_id import current_request_id

# gunicorn's error log, written through our handler (its access log stays off: query strings).
GUNICORN_LOGGERS = ("gunicorn.error",)


# Third-party loggers that say too much at INFO.
QUIET = ("alembic.runtime.plugins",)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def parse_level(raw: str) -> int:
    level = logging.getLevelName(raw.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"LOG_LEVEL={raw!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def handler(style: str = "json") -> logging.Handler:
    """stderr, one record per line, with the request id."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter() if style == "json" else TextFormatter())
    stream.addFilter(RequestIdFilter())
    return stream


def configure(level: str = "INFO", style: str = "json") -> None:
    """Route every log record of the process to stderr, formatted as `style`."""
    output = handler(style)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(output)
    root.setLevel(parse_level(level))
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in GUNICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [output]
        logger.propagate = False


def gunicorn_logconfig() -> dict[str, Any]:
    """gunicorn's own logging (`logconfig_dict` of gunicorn.conf.py), in the format of
    LOG_FORMAT from the master's start: its lines read like the application's."""
    style = os.environ.get("LOG_FORMAT", "json").strip().lower()
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"app": {"()": JsonFormatter if style == "json" else TextFormatter}},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "app",
                                "filters": ["request_id"], "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO",
                                       "propagate": False},
                    # gunicorn logs every request once a logging configuration is given;
                    # its line holds the query string (names, birth dates…): off. The
                    # application's own request line (app/ops/observe.py) replaces it.
                    "gunicorn.access": {"handlers": [], "level": "CRITICAL",
                                        "propagate": False},
                    **{name: {"level": "WARNING"} for name in QUIET}},
    }
