"""The logged-in account of the current request, re-checked against the database each time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import g, redirect, request, session, url_for
from sqlalchemy import Connection

from app.accounts.models import Account, UserSession
from app.accounts.service import load_session
from app.db import write_transaction
from app.state import current_state

SESSION_KEY = "sid"


@contextmanager
def transaction() -> Iterator[Connection]:
    with write_transaction(current_state().engine) as conn:
        yield conn


def load_current() -> bool:
    """Fill g.account / g.user_session; False when a session cookie was no longer valid."""
    g.account, g.user_session = None, None
    token = session.get(SESSION_KEY)
    if not token:
        return True
    idle = timedelta(minutes=current_state().settings.session_idle_minutes)
    with transaction() as conn:
        found = load_session(conn, token, idle=idle)
    if found is None:
        # Revoked (logout elsewhere, deactivation, password reset), idle or unknown.
        session.clear()
        return False
    g.account, g.user_session = found
    return True


def current_account() -> Account | None:
    return g.get("account")


def current_session() -> UserSession | None:
    return g.get("user_session")


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would help phishing."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper
