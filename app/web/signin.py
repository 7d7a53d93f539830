"""Opening and refusing sessions, the same way for both sign-in methods: the login/password
account INT_R02 created ("flux v1") and single sign-on ("flux v2").

A session has regulator rights only when the person came through SAS's booking link with
an allowed `origin`; every sign-in and every refusal leaves an AuditEvent."""

from __future__ import annotations

import logging
from typing import Any

from flask import redirect, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError

from app.accounts.models import Account
from app.accounts.service import end_session, start_session
from app.audit.events import LOGIN, LOGOUT
from app.audit.trail import record, record_authentication
from app.auth.roles import Right, has_right
from app.state import current_state
from app.web.current import SESSION_KEY, current_account, current_session, transaction
from app.web.pages import error_page, open_session

log = logging.getLogger(__name__)

NO_RIGHTS = ("Vos droits de régulateur ne sont ouverts que dans une session arrivée depuis "
             "la plateforme numérique SAS (lien « prendre rendez-vous » du SAS). "
             "Ouvrez ce créneau depuis le SAS.")


def account_label(account: Account) -> str:
    """Who acted, as versions and AuditEvents name a person of the web pages."""
    if account.practitioner_id:
        return f"{account.role} Practitioner/{account.practitioner_id} ({account.display_name})"
    return f"{account.role} account {account.pk} ({account.display_name})"


def _entities(account: Account | None) -> list[str]:
    return [f"Practitioner/{account.practitioner_id}"] if account and account.practitioner_id \
        else []


def _audit(subtype: str, agent: str, account: Account | None, *, failed: str | None = None,
           description: str | None = None) -> None:
    try:
        record_authentication(current_state(), subtype, agent, request.remote_addr,
                              _entities(account), failed=failed, description=description)
    except SQLAlchemyError:
        # The sign-in (or its refusal) stands when the audit store is down; say so loudly.
        log.exception("Could not audit a %s: %s", "sign-in" if subtype == LOGIN else
                      "sign-out", failed or description)


def sign_in(account: Account, *, method: str, origin: str | None,
            id_token: str | None = None) -> None:
    """Open a session for `account`; regulator rights only with an allowed origin."""
    with transaction() as conn:
        token = start_session(conn, account, from_sas=origin is not None, id_token=id_token)
    open_session(token)
    _audit(LOGIN, account_label(account), account,
           description=f"{method}, origin={origin or '(none)'}")


def refuse(agent: str, account: Account | None, reason: str) -> None:
    """A refused sign-in or access: audited, and no session is left behind."""
    drop_session()
    _audit(LOGIN, agent, account, failed=reason)


def drop_session() -> None:
    """End the session of this browser, if any, and forget its cookie."""
    token = session.get(SESSION_KEY)
    if token:
        with transaction() as conn:
            end_session(conn, token)
    session.clear()


def signed_out(account: Account | None) -> None:
    if account is not None:
        _audit(LOGOUT, account_label(account), account)


def booking_refusal(entity: str) -> Any | None:
    """None when this session may book for a patient; else the login page (signed out) or
    a French 403 page, audited (e.g. a regulator who did not come through SAS)."""
    account, user_session = current_account(), current_session()
    if account is None or user_session is None:
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    if has_right(account, user_session, Right.BOOK_FOR_PATIENT):
        return None
    try:
        record(current_state(), "read", account_label(account), request.remote_addr,
               [entity], failed="403: no booking right in this session (regulator rights "
               "need a session that came from SAS with an origin)")
    except SQLAlchemyError:
        log.exception("Could not audit a refused booking page")
    return error_page(403, NO_RIGHTS)
