"""`fhir-agenda user create | list | disable`: the accounts of the centre's people
(administrators and staff); regulator accounts come from SAS (INT_R02) and follow their
Practitioner, so they are listed here but neither created nor disabled.

A new account gets a random password and a single-use link to choose one (valid
PASSWORD_RESET_TTL_MINUTES), printed or, with --send-mail, mailed like a password reset.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import Connection, insert, select, update
from werkzeug.security import generate_password_hash

from app.accounts.mailer import mailer_for
from app.accounts.models import REGULATOR, Account, new_token, normalise_email, token_hash, utcnow
from app.accounts.service import request_password_reset, revoke_sessions
from app.auth.roles import ADMINISTRATOR, STAFF
from app.db import read_transaction, write_transaction
from app.state import state_of
from app.storage.schema import password_resets, user_accounts

MANAGED_ROLES = (ADMINISTRATOR, STAFF)


class AccountRefused(click.ClickException):
    """What the command cannot do, in one sentence."""


def create(conn: Connection, email: str, role: str, given: str | None,
           family: str | None) -> Account:
    address = normalise_email(email)
    if address is None or "@" not in address:
        raise AccountRefused(f"{email!r} is not an email address")
    taken = conn.execute(select(user_accounts.c.pk).where(
        user_accounts.c.email == address, user_accounts.c.active.is_(True))).first()
    if taken:
        raise AccountRefused(f"An active account already uses {address} (#{taken.pk})")
    now = utcnow()
    pk = conn.execute(insert(user_accounts).values(
        practitioner_id=None, email=address, given=given, family=family, role=role,
        password_hash=generate_password_hash(new_token()), active=True,
        terms_accepted_at=None, created_at=now, updated_at=now, deactivated_at=None)
    ).inserted_primary_key[0]
    row = conn.execute(select(user_accounts).where(user_accounts.c.pk == pk)).one()
    return Account.from_row(row)


def password_link(conn: Connection, account: Account, base_url: str, ttl: timedelta) -> str:
    """A single-use link to choose the password (the reset pages of app/web)."""
    token, now = new_token(), utcnow()
    conn.execute(insert(password_resets).values(
        token_hash=token_hash(token), account_pk=account.pk, created_at=now,
        expires_at=now + ttl, used_at=None))
    return f"{base_url.rstrip('/')}/reinitialiser/{token}"


def find(conn: Connection, who: str) -> Account:
    """The account with this number (#pk) or this email (the active one, else the latest)."""
    key = who.removeprefix("#")
    query = select(user_accounts)
    if key.isdecimal():
        query = query.where(user_accounts.c.pk == int(key))
    else:
        query = query.where(user_accounts.c.email == normalise_email(who)).order_by(
            user_accounts.c.active.desc(), user_accounts.c.pk.desc())
    row = conn.execute(query.limit(1)).first()
    if row is None:
        raise AccountRefused(f"No account {who}")
    return Account.from_row(row)


def disable(conn: Connection, account: Account) -> None:
    if account.role == REGULATOR:
        raise AccountRefused("Regulator accounts follow SAS (INT_R02): SAS deactivates them "
                             "(Practitioner active=false)")
    now = utcnow()
    conn.execute(update(user_accounts).where(user_accounts.c.pk == account.pk).values(
        active=False, deactivated_at=now, updated_at=now))
    revoke_sessions(conn, account.pk)  # open sessions end at their next click
    conn.execute(update(password_resets).where(password_resets.c.account_pk == account.pk,
                                               password_resets.c.used_at.is_(None))
                 .values(used_at=now))


@click.group("user", cls=AppGroup)
def user_group() -> None:
    """Accounts of administrators and staff (regulators come from SAS)."""


@user_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(MANAGED_ROLES), required=True)
@click.option("--given", help="First name")
@click.option("--family", help="Last name")
@click.option("--send-mail", is_flag=True,
              help="Mail the link to choose a password instead of printing it")
def create_command(email: str, role: str, given: str | None, family: str | None,
                   send_mail: bool) -> None:
    """Create an account and give the link where its owner chooses a password."""
    state = state_of(current_app)
    settings = state.settings
    ttl = timedelta(minutes=settings.password_reset_ttl_minutes)
    with write_transaction(state.engine) as conn:
        account = create(conn, email, role, given, family)
        if send_mail:
            mailer = mailer_for(settings)
            if mailer is None:
                raise AccountRefused("No mail relay (SMTP_HOST): run again without --send-mail")
            request_password_reset(conn, account.email or email, mailer,
                                   settings.public_web_url, ttl=ttl)
            link = None
        else:
            link = password_link(conn, account, settings.public_web_url, ttl)
    click.echo(f"Account #{account.pk} created: {account.email} ({role})")
    if link:
        click.echo(f"Password link (single use, {settings.password_reset_ttl_minutes} min):")
        click.echo(link)
    else:
        click.echo(f"A link to choose the password was mailed to {account.email}")


@user_group.command("list")
@click.option("--all", "everyone", is_flag=True, help="Also regulators and closed accounts")
def list_command(everyone: bool) -> None:
    """List the accounts: number, role, status, email, name."""
    query = select(user_accounts).order_by(user_accounts.c.pk)
    if not everyone:
        query = query.where(user_accounts.c.role != REGULATOR,
                            user_accounts.c.active.is_(True))
    with read_transaction(state_of(current_app).engine) as conn:
        accounts = [Account.from_row(row) for row in conn.execute(query)]
    for account in accounts:
        status = "active" if account.active else (
            f"disabled {account.deactivated_at:%Y-%m-%d %H:%M}" if account.deactivated_at
            else "disabled")
        click.echo(f"#{account.pk}\t{account.role}\t{status}\t{account.email or '-'}\t"
                   f"{account.display_name}")
    if not accounts:
        click.echo("No accounts")


@user_group.command("disable")
@click.argument("who", metavar="EMAIL_OR_#NUMBER")
def disable_command(who: str) -> None:
    """Close an account: its sessions and pending password links end now."""
    with write_transaction(state_of(current_app).engine) as conn:
        account = find(conn, who)
        disable(conn, account)
    click.echo(f"Account #{account.pk} ({account.email}) disabled")
