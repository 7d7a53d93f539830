"""Cookie signing key, cookie flags, CSRF tokens and response headers of the web pages."""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets

from flask import Flask, Response, request, session

from app.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
INSTANCE_SECRET = PROJECT_ROOT / "instance" / "secret_key"


def _instance_secret() -> str:
    """A key generated once and kept beside the embedded database, so that every worker
    of this host (and every restart) signs sessions the same way."""
    if not INSTANCE_SECRET.exists():
        INSTANCE_SECRET.parent.mkdir(parents=True, exist_ok=True)
        draft = INSTANCE_SECRET.with_name(f".secret_key.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        # link() publishes the complete file atomically; the first worker to get there wins.
        with contextlib.suppress(FileExistsError):
            os.link(draft, INSTANCE_SECRET)
        draft.unlink()
    return INSTANCE_SECRET.read_text().strip()


def configure(app: Flask, settings: Settings) -> None:
    if settings.secret_key:
        app.secret_key = settings.secret_key
    elif not app.secret_key:
        app.secret_key = _instance_secret()
        log.warning(
            "\n%s\nSECRET_KEY is not set: using the key kept in %s, which only this host "
            "has.\nWith several hosts behind a load balancer, set SECRET_KEY on all of "
            "them.\n%s", "*" * 78, INSTANCE_SECRET, "*" * 78)
    # The cookie carries the session and CSRF tokens: no script access, not sent on
    # cross-site POSTs, HTTPS-only when the public site is served over HTTPS.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.public_web_url.startswith("https://"))


def csrf_token() -> str:
    """The CSRF token of this browser session (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def renew_csrf_token() -> None:
    # On login and logout: a token seen before authentication is not trusted after it.
    session["csrf"] = secrets.token_urlsafe(32)


def csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and bool(expected) and hmac.compare_digest(
        expected.encode(), given.encode())


def add_headers(response: Response) -> Response:
    # Account pages are personal: never cached, never framed, and reset links (tokens in
    # the URL) never leak through the Referer header.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    return response
