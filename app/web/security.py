"""Cookie signing key, cookie flags, CSRF tokens and response headers of the web pages."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence

from flask import Flask, Request, Response, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from app.config import INSTANCE_DIR, Settings, instance_secret

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
INSTANCE_SECRET = INSTANCE_DIR / "secret_key"
API_PREFIX = "/fhir"


class WebSessionInterface(SecureCookieSessionInterface):
    """Cookie sessions for the web pages only.

    The FHIR API authenticates every request (certificate or token), never by cookie: it
    neither reads nor writes one, and skips verifying a signature on each call. Flask gives
    it its null session: empty, and any write raises."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        path = request.path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return None
        return super().open_session(app, request)


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
    app.session_interface = WebSessionInterface()
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


def add_headers(response: Response, form_targets: Sequence[str] = ()) -> Response:
    # Account pages are personal: never cached, never framed, and reset links (tokens in
    # the URL) never leak through the Referer header. Forms post to us only, and may lead
    # on (redirects count) to `form_targets`: the SSO provider (logout, sign-in).
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    form_action = " ".join(["'self'", *form_targets])
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'")
    return response
