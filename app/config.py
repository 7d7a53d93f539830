"""Configuration read from environment variables, with defaults that run out of the box."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "instance" / "agenda.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    # Public base URL of the FHIR endpoint, used in Location headers, fullUrl and paging links.
    fhir_base_url: str = "http://127.0.0.1:5000/fhir"
    # Time zone applied to search dates given without an offset (French agendas).
    default_timezone: str = "Europe/Paris"
    default_page_size: int = 50
    max_page_size: int = 1000
    # Safety net for _include:iterate loops.
    max_include_depth: int = 4
    sql_echo: bool = False
    # Public base URL of our web pages; SAS slots link to `{public_web_url}/agenda/{schedule}`.
    public_web_url: str = "http://127.0.0.1:5000"
    sas_max_practitioners: int = 25
    sas_max_window_hours: int = 72

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", cls.database_url),
            "fhir_base_url": env.get("FHIR_BASE_URL", cls.fhir_base_url).rstrip("/"),
            "default_timezone": env.get("DEFAULT_TIMEZONE", cls.default_timezone),
            "default_page_size": int(env.get("FHIR_DEFAULT_PAGE_SIZE", cls.default_page_size)),
            "max_page_size": int(env.get("FHIR_MAX_PAGE_SIZE", cls.max_page_size)),
            "sql_echo": env.get("SQL_ECHO", "") in {"1", "true", "yes"},
            "public_web_url": env.get("PUBLIC_WEB_URL", cls.public_web_url).rstrip("/"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
