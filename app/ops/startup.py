"""What every process of the service does first (gunicorn's app, the command line): read
the settings from the environment, set up the logs, and refuse to start the production
profile on settings that would publish wrong URLs or forge-able sessions.

The application factory does not check: tests build production apps on test URLs.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from app.config import Settings
from app.ops import logs

log = logging.getLogger(__name__)
LOG_FORMATS = ("json", "text")
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class UnsafeSettings(RuntimeError):
    """The production profile was asked to start on settings it refuses; the message names
    the environment variables to fix."""


def process_settings() -> Settings:
    """The settings of this process, its logs set up, checked for the production profile."""
    settings = Settings.from_env()
    if settings.log_format not in LOG_FORMATS:
        raise UnsafeSettings(f"LOG_FORMAT={settings.log_format!r}: expected json or text")
    logs.configure(settings.log_level, settings.log_format)
    problems = production_problems(settings)
    if problems:
        raise UnsafeSettings("The production profile refuses to start:\n" + "\n".join(
            f"  - {problem}" for problem in problems))
    return settings


def production_problems(settings: Settings) -> list[str]:
    """What is wrong for production, one sentence per variable (none in development)."""
    if settings.development:
        return []
    defaults = Settings()
    problems = [problem for problem in (
        _url_problem("FHIR_BASE_URL", settings.fhir_base_url, defaults.fhir_base_url,
                     settings.allow_http_loopback,
                     "fullUrl, Location, paging links, token audiences"),
        _url_problem("PUBLIC_WEB_URL", settings.public_web_url, defaults.public_web_url,
                     settings.allow_http_loopback, "the booking links of SAS slots, mails"))
        if problem]
    if not settings.secret_key:
        problems.append("SECRET_KEY is not set: web sessions and CSRF tokens need a secret "
                        "shared by every host (e.g. `python3 -c 'import secrets; "
                        "print(secrets.token_urlsafe(32))'`)")
    return problems


def _url_problem(name: str, value: str, default: str, allow_http_loopback: bool,
                 uses: str) -> str | None:
    if value == default:
        return (f"{name} is not set: the server would publish {default} ({uses}); set "
                "the public https:// address")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and allow_http_loopback and _loopback(parts.hostname):
        log.warning("%s=%s: http accepted on a loopback host (ALLOW_HTTP_LOOPBACK)", name,
                    value)
        return None
    return (f"{name}={value!r} is not an https:// URL: SAS and OAuth clients only call "
            "https, and session cookies are sent over https only")


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
