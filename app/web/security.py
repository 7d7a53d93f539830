"""Cookie signing key, cookie flags, CSRF tokens and response headers of the web pages."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Flask, Response, request, session

from app.config import INSTANCE_DIR, Settings, instance_secret

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
INSTANCE_SECRET = INSTANCE_DIR / "secret_key"


def _instance_secret() -> str:
    return instance_secret(INSTANCE_SECRET.name, lambda: secrets.token_hex(32))


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
