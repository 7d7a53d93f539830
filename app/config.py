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
    # Base of the identifier systems of our own technical ids (locations, appointments…).
    local_identifier_system: str = "https://fhir-agenda.org/identifiers"
    sas_max_practitioners: int = 25
    sas_max_window_hours: int = 72
    # -- user accounts and web pages --
    # Signs the Flask session cookie (CSRF token, session token); generated at startup when
    # unset, which logs out everyone on restart and breaks multi-worker deployments.
    secret_key: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "no-reply@localhost"
    password_reset_ttl_minutes: int = 60
    # A web session unused for this long is refused (health data: keep idle sessions short).
    session_idle_minutes: int = 120

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
            "local_identifier_system": env.get("LOCAL_IDENTIFIER_SYSTEM",
                                               cls.local_identifier_system).rstrip("/"),
            "secret_key": env.get("SECRET_KEY") or None,
            "smtp_host": env.get("SMTP_HOST", cls.smtp_host),
            "smtp_port": int(env.get("SMTP_PORT", cls.smtp_port)),
            "smtp_user": env.get("SMTP_USER") or None,
            "smtp_password": env.get("SMTP_PASSWORD") or None,
            "smtp_starttls": _flag(env.get("SMTP_STARTTLS", "")),
            "smtp_timeout_seconds": float(env.get("SMTP_TIMEOUT", cls.smtp_timeout_seconds)),
            "mail_from": env.get("MAIL_FROM", cls.mail_from),
            "password_reset_ttl_minutes": int(env.get("PASSWORD_RESET_TTL_MINUTES",
                                                      cls.password_reset_ttl_minutes)),
            "session_idle_minutes": int(env.get("SESSION_IDLE_MINUTES",
                                                cls.session_idle_minutes)),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _flag(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}
