"""What every page module shares: the French error page, and opening a signed-in session."""

from __future__ import annotations

from typing import Any

from flask import render_template, session

from app.web import security
from app.web.current import SESSION_KEY


def error_page(status: int, message: str, **context: Any) -> tuple[str, int]:
    return render_template("erreur.html", message=message, status=status, **context), status


def open_session(token: str) -> None:
    # A fresh cookie at sign-in: nothing planted before authentication survives it.
    session.clear()
    session[SESSION_KEY] = token
    security.renew_csrf_token()
