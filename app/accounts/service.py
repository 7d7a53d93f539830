"""Account operations, each on a caller's connection inside the caller's transaction.

Regulator accounts follow their FHIR Practitioner (SAS INT_R02): the FHIR repository calls
`sync_regulator` inside the write transaction, so the account and the resource commit or roll
back together. Regulator *rights* need more than a logged-in account: a session that arrived
through SAS's booking link (`origin=sas`, `user_sessions.from_sas`, set by the sign-in pages
of app/web); see `has_regulator_rights`.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.mailer import Mailer, password_reset_mail
from app.accounts.models import (
    REGULATOR,
    TERMS_VERSION,
    Account,
    UserSession,
    new_token,
    normalise_email,
    token_hash,
    utcnow,
)
from app.accounts.practitioner import account_fields
from app.auth.roles import Right, has_right
from app.ops.meters import LOGINS
from app.storage.schema import password_resets, user_accounts, user_sessions

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
# Hashing cost grows with length: refuse absurd inputs instead of burning CPU on them.
MAX_PASSWORD_LENGTH = 256
DEFAULT_RESET_TTL = timedelta(hours=1)
# last_seen_at is refreshed at most this often, so browsing is not a write per page.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)


class InvalidResetToken(Exception):
    """Unknown, used, revoked or expired reset link, or its account is inactive."""


class WeakPassword(ValueError):
    """The new password breaks the password policy (the message says which rule)."""


_dummy_hash: str | None = None


def _burn_password_check(password: str) -> None:
    # Unknown or inactive email: spend the same hashing time as a real check, so response
    # times do not reveal which addresses have an account.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash(new_token())
    check_password_hash(_dummy_hash, password)


# -- regulators from SAS ---------------------------------------------------------------------

def sync_regulator(conn: Connection, practitioner_id: str,
                   practitioner: dict[str, Any] | None) -> None:
    """Create or update the account behind a regulator Practitioner; None = deleted."""
    now = utcnow()
    row = conn.execute(select(user_accounts)
                       .where(user_accounts.c.practitioner_id == practitioner_id)
                       .with_for_update()).first()
    if practitioner is None:
        if row is not None and row.active:
            _set_active(conn, row.pk, False, now)
        return
    fields = account_fields(practitioner)
    if row is None:
        # The password is random and never shown: the regulator sets one through
        # "mot de passe oublié". No email verification: SAS vouches for the address.
        conn.execute(insert(user_accounts).values(
            practitioner_id=practitioner_id, role=REGULATOR,
            password_hash=generate_password_hash(new_token()), terms_accepted_at=None,
            created_at=now, updated_at=now, deactivated_at=None if fields["active"] else now,
            **fields))
        return
    active = fields.pop("active")
    conn.execute(update(user_accounts).where(user_accounts.c.pk == row.pk)
                 .values(updated_at=now, **fields))
    if active != bool(row.active):
        _set_active(conn, row.pk, active, now)


def _set_active(conn: Connection, account_pk: int, active: bool, now: datetime) -> None:
    conn.execute(update(user_accounts).where(user_accounts.c.pk == account_pk).values(
        active=active, deactivated_at=None if active else now, updated_at=now))
    if not active:
        # Withdrawn habilitation takes effect now: every open session and pending reset link
        # dies with it. Reactivation does not revive them; the regulator logs in again.
        revoke_sessions(conn, account_pk)
        _revoke_resets(conn, account_pk, now)


def find_by_practitioner(conn: Connection, practitioner_id: str) -> Account | None:
    row = conn.execute(select(user_accounts)
                       .where(user_accounts.c.practitioner_id == practitioner_id)).first()
    return Account.from_row(row) if row else None


def get_account(conn: Connection, account_pk: int) -> Account | None:
    row = conn.execute(select(user_accounts).where(user_accounts.c.pk == account_pk)).first()
    return Account.from_row(row) if row else None


# -- login and sessions ----------------------------------------------------------------------

def _active_rows_by_email(conn: Connection, email: str | None) -> list[Any]:
    """The active accounts with this email: SAS may give one address to several regulator
    accounts (INT_R02 does not make emails unique), each with its own password."""
    address = normalise_email(email)
    if address is None:
        return []
    return list(conn.execute(select(user_accounts).where(
        user_accounts.c.email == address, user_accounts.c.active.is_(True))
        .order_by(user_accounts.c.pk)).all())


def authenticate(conn: Connection, email: str, password: str) -> Account | None:
    """The active account with this email and password; inactive accounts never match.
    When several share the email, the password tells which one is logging in."""
    rows = _active_rows_by_email(conn, email)
    if not rows or len(password) > MAX_PASSWORD_LENGTH:
        _burn_password_check(password[:MAX_PASSWORD_LENGTH])
        LOGINS.labels("password", "refused").inc()
        return None
    for row in rows:
        if check_password_hash(row.password_hash, password):
            LOGINS.labels("password", "accepted").inc()
            return Account.from_row(row)
    LOGINS.labels("password", "refused").inc()
    return None


def start_session(conn: Connection, account: Account, *, from_sas: bool = False,
                  id_token: str | None = None) -> str:
    """Open a web session; returns the token for the cookie (only its hash is stored).
    `from_sas`: the person arrived through SAS's booking link (origin=sas), the only way
    to regulator rights; `id_token`: the SSO provider's, when signed in through it."""
    token, now = new_token(), utcnow()
    conn.execute(insert(user_sessions).values(
        token_hash=token_hash(token), account_pk=account.pk, from_sas=from_sas,
        created_at=now, last_seen_at=now, revoked_at=None, id_token=id_token))
    return token


def load_session(conn: Connection, token: str | None, *,
                 idle: timedelta | None = None) -> tuple[Account, UserSession] | None:
    """The live session of this token and its account, or None (revoked, idle, inactive)."""
    if not token:
        return None
    row = conn.execute(
        select(user_sessions, user_accounts.c.active)
        .join(user_accounts, user_accounts.c.pk == user_sessions.c.account_pk)
        .where(user_sessions.c.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None or not row.active:
        return None
    now = utcnow()
    if idle is not None and now - row.last_seen_at > idle:
        conn.execute(update(user_sessions).where(user_sessions.c.pk == row.pk)
                     .values(revoked_at=now))
        return None
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        conn.execute(update(user_sessions).where(user_sessions.c.pk == row.pk)
                     .values(last_seen_at=now))
    account = get_account(conn, row.account_pk)
    return (account, UserSession.from_row(row)) if account else None


def session_account(conn: Connection, token: str | None, *,
                    idle: timedelta | None = None) -> Account | None:
    """The account of a live session; None once revoked or the account is deactivated."""
    found = load_session(conn, token, idle=idle)
    return found[0] if found else None


def end_session(conn: Connection, token: str | None) -> None:
    if token:
        conn.execute(update(user_sessions)
                     .where(user_sessions.c.token_hash == token_hash(token),
                            user_sessions.c.revoked_at.is_(None))
                     .values(revoked_at=utcnow()))


def revoke_sessions(conn: Connection, account_pk: int) -> None:
    conn.execute(update(user_sessions)
                 .where(user_sessions.c.account_pk == account_pk,
                        user_sessions.c.revoked_at.is_(None))
                 .values(revoked_at=utcnow()))


def has_regulator_rights(account: Account, session: UserSession) -> bool:
    """Regulator rights (booking for a patient) exist only in a session that came from SAS
    (see app/auth/roles.py): the sign-in pages set `from_sas` when the regulator arrived
    through the booking link with an allowed `origin`."""
    return account.role == REGULATOR and has_right(account, session, Right.BOOK_FOR_PATIENT)


def accept_terms(conn: Connection, account: Account, version: str = TERMS_VERSION) -> Account:
    """Record the acceptance of this version of our terms of use, with its date (accepting
    the same version again keeps the first date)."""
    conn.execute(update(user_accounts)
                 .where(user_accounts.c.pk == account.pk,
                        or_(user_accounts.c.terms_accepted_at.is_(None),
                            user_accounts.c.terms_version.is_(None),
                            user_accounts.c.terms_version != version))
                 .values(terms_accepted_at=utcnow(), terms_version=version))
    return get_account(conn, account.pk) or account


# -- forgotten passwords ---------------------------------------------------------------------

def request_password_reset(conn: Connection, email: str, mailer: Mailer, base_url: str, *,
                           ttl: timedelta = DEFAULT_RESET_TTL) -> None:
    """Mail a single-use reset link to each active account with this email, if any (each
    mail names its account).

    Returns the same way whether or not the address is known (no account enumeration);
    mail failures are logged, never reported to the requester, for the same reason.
    """
    for row in _active_rows_by_email(conn, email):
        _send_reset(conn, row, mailer, base_url, ttl)


def _send_reset(conn: Connection, row: Any, mailer: Mailer, base_url: str,
                ttl: timedelta) -> None:
    token, now = new_token(), utcnow()
    conn.execute(insert(password_resets).values(
        token_hash=token_hash(token), account_pk=row.pk, created_at=now,
        expires_at=now + ttl, used_at=None))
    subject, body = password_reset_mail(Account.from_row(row).display_name,
                                        f"{base_url.rstrip('/')}/reinitialiser/{token}",
                                        int(ttl.total_seconds() // 60))
    try:
        mailer.send(row.email, subject, body)
    except (smtplib.SMTPException, OSError):
        log.exception("Password reset mail to account %s could not be sent", row.pk)


def _live_reset(conn: Connection, token: str) -> Any | None:
    return conn.execute(
        select(password_resets.c.pk, password_resets.c.account_pk)
        .join(user_accounts, user_accounts.c.pk == password_resets.c.account_pk)
        .where(password_resets.c.token_hash == token_hash(token),
               password_resets.c.used_at.is_(None),
               password_resets.c.expires_at > utcnow(),
               user_accounts.c.active.is_(True))).first()


def check_reset_token(conn: Connection, token: str) -> Account | None:
    """The account a reset link would change, without using the link."""
    row = _live_reset(conn, token)
    return get_account(conn, row.account_pk) if row else None


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            f"Le mot de passe doit comporter au moins {MIN_PASSWORD_LENGTH} caractères.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(
            f"Le mot de passe doit comporter au plus {MAX_PASSWORD_LENGTH} caractères.")


def reset_password(conn: Connection, token: str, new_password: str) -> Account:
    """Set a new password through a reset link: single use, before it expires.

    Raises InvalidResetToken, or WeakPassword (the link then stays usable). Every session
    and other pending link of the account is revoked: whoever knew the old password is out.
    """
    row = _live_reset(conn, token)
    if row is None:
        raise InvalidResetToken(token)
    check_password_policy(new_password)
    now = utcnow()
    used = conn.execute(update(password_resets)
                        .where(password_resets.c.pk == row.pk,
                               password_resets.c.used_at.is_(None))
                        .values(used_at=now))
    if used.rowcount != 1:  # a concurrent request used it first
        raise InvalidResetToken(token)
    conn.execute(update(user_accounts).where(user_accounts.c.pk == row.account_pk).values(
        password_hash=generate_password_hash(new_password), updated_at=now))
    revoke_sessions(conn, row.account_pk)
    _revoke_resets(conn, row.account_pk, now)
    account = get_account(conn, row.account_pk)
    assert account is not None
    return account


def _revoke_resets(conn: Connection, account_pk: int, now: datetime) -> None:
    conn.execute(update(password_resets)
                 .where(password_resets.c.account_pk == account_pk,
                        password_resets.c.used_at.is_(None))
                 .values(used_at=now))
