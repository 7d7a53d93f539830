"""app/accounts/service.py on both databases: regulator sync (INT_R02), login, sessions,
terms of use and password resets. Mail goes to a recording mailer here; the real SMTP path
is covered in test_accounts_mailer.py and test_web_password_reset.py."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select, update

from app.accounts import service
from app.accounts.models import TERMS_VERSION, token_hash, utcnow
from app.db import write_transaction
from app.storage.schema import password_resets, user_accounts, user_sessions
from tests.support.accounts import PASSWORD, account_row, regulator, set_password, sync

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

NEW_PASSWORD = "une phrase de passe neuve"


@dataclass
class RecordingMailer:
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


class BrokenMailer:
    def send(self, to: str, subject: str, body: str) -> None:
        raise smtplib.SMTPServerDisconnected("down")


@pytest.fixture
def db(app: Flask, engine: Engine) -> Engine:
    """The migrated engine with every table emptied (by the `app` fixture)."""
    return engine


def _login(engine: Engine, email: str, password: str = PASSWORD) -> service.Account | None:
    with write_transaction(engine) as conn:
        return service.authenticate(conn, email, password)


def _open(engine: Engine, email: str, *, from_sas: bool = False) -> str:
    with write_transaction(engine) as conn:
        account = service.authenticate(conn, email, PASSWORD)
        assert account is not None
        return service.start_session(conn, account, from_sas=from_sas)


def _session_account(engine: Engine, token: str, **kwargs: object) -> service.Account | None:
    with write_transaction(engine) as conn:
        return service.session_account(conn, token, **kwargs)  # type: ignore[arg-type]


def _reset_link(engine: Engine, email: str, **kwargs: object) -> str | None:
    mailer = RecordingMailer()
    with write_transaction(engine) as conn:
        service.request_password_reset(conn, email, mailer, "https://agenda.example/",
                                       **kwargs)  # type: ignore[arg-type]
    if not mailer.sent:
        return None
    body = mailer.sent[0][2]
    return body.split("https://agenda.example/reinitialiser/", 1)[1].split()[0]


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- regulator sync ----------------------------------------------------------------------------

def test_first_sync_creates_a_regulator_account(db: Engine) -> None:
    sync(db, "regul-1", regulator(national_id="810003456789"))
    row = account_row(db, "regul-1")
    assert (row.role, row.email, row.family, row.given) == (
        "regulator", "jeanne.martin@example.fr", "MARTIN", "Jeanne")
    assert row.active is True and row.deactivated_at is None
    assert row.terms_accepted_at is None  # accepted at first login
    assert row.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert row.created_at == row.updated_at


def test_sync_commits_or_rolls_back_with_the_callers_transaction(db: Engine) -> None:
    with pytest.raises(RuntimeError), write_transaction(db) as conn:
        service.sync_regulator(conn, "regul-1", regulator())
        raise RuntimeError("the FHIR write failed")
    assert _count(db, user_accounts) == 0


def test_generated_password_is_unknown_to_everyone(db: Engine) -> None:
    sync(db, "regul-1", regulator("a@example.fr"))
    sync(db, "regul-2", regulator("b@example.fr"))
    assert account_row(db, "regul-1").password_hash != account_row(db, "regul-2").password_hash
    assert _login(db, "a@example.fr", "") is None


def test_later_syncs_update_email_and_names(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    before = account_row(db, "regul-1")
    sync(db, "regul-1", regulator("Nouvelle.Adresse@Example.FR", family="DURAND",
                                  given=("Jeanne", "Marie")))
    after = account_row(db, "regul-1")
    assert (after.email, after.family, after.given) == (
        "nouvelle.adresse@example.fr", "DURAND", "Jeanne Marie")
    assert after.pk == before.pk and after.created_at == before.created_at
    assert after.password_hash == before.password_hash
    assert _count(db, user_accounts) == 1


def test_email_is_the_first_email_telecom(db: Engine) -> None:
    resource = regulator()
    resource["telecom"] = [{"system": "phone", "value": "+33600000000"},
                           {"system": "email", "value": " Premier@Example.fr "},
                           {"system": "email", "value": "second@example.fr"}]
    sync(db, "regul-1", resource)
    assert account_row(db, "regul-1").email == "premier@example.fr"


def test_deactivation_revokes_sessions_and_reset_links(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    token = _open(db, "jeanne.martin@example.fr")
    link = _reset_link(db, "jeanne.martin@example.fr")
    assert link and _session_account(db, token) is not None

    sync(db, "regul-1", regulator(active=False))

    row = account_row(db, "regul-1")
    assert row.active is False and row.deactivated_at is not None
    assert _session_account(db, token) is None
    assert _login(db, "jeanne.martin@example.fr") is None
    with db.connect() as conn:
        assert conn.execute(select(user_sessions.c.revoked_at)).scalar_one() is not None
        assert conn.execute(select(password_resets.c.used_at)).scalar_one() is not None
    with pytest.raises(service.InvalidResetToken), write_transaction(db) as conn:
        service.reset_password(conn, link, NEW_PASSWORD)


def test_reactivation_restores_login_but_not_old_sessions(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    token = _open(db, "jeanne.martin@example.fr")
    sync(db, "regul-1", regulator(active=False))
    sync(db, "regul-1", regulator(active=True))
    row = account_row(db, "regul-1")
    assert row.active is True and row.deactivated_at is None
    assert _login(db, "jeanne.martin@example.fr") is not None
    assert _session_account(db, token) is None


def test_deleted_practitioner_deactivates_its_account(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    sync(db, "regul-1", None)
    assert account_row(db, "regul-1").active is False
    sync(db, "unknown", None)  # nothing to do, no error
    assert _count(db, user_accounts) == 1


def test_account_created_inactive_cannot_log_in(db: Engine) -> None:
    sync(db, "regul-1", regulator(active=False))
    set_password(db, "regul-1")
    row = account_row(db, "regul-1")
    assert row.active is False and row.deactivated_at is not None
    assert _login(db, "jeanne.martin@example.fr") is None


def test_email_of_a_deactivated_account_goes_to_the_new_one(db: Engine) -> None:
    sync(db, "old", regulator(national_id="810003456789", active=False))
    sync(db, "new", regulator(national_id="810003456789"))
    set_password(db, "old")
    set_password(db, "new")
    account = _login(db, "jeanne.martin@example.fr")
    assert account is not None and account.practitioner_id == "new"


def test_accounts_sharing_an_email_each_log_in_with_their_own_password(db: Engine) -> None:
    sync(db, "first", regulator(family="PREMIER"))
    sync(db, "second", regulator(family="SECOND"))
    set_password(db, "first")
    set_password(db, "second", NEW_PASSWORD)
    assert _login(db, "jeanne.martin@example.fr").practitioner_id == "first"  # type: ignore[union-attr]
    second = _login(db, "jeanne.martin@example.fr", NEW_PASSWORD)
    assert second is not None and second.practitioner_id == "second"
    assert _login(db, "jeanne.martin@example.fr", "autre chose") is None
    # A forgotten password: one link per account, each mail naming its account.
    mailer = RecordingMailer()
    with write_transaction(db) as conn:
        service.request_password_reset(conn, "jeanne.martin@example.fr", mailer,
                                       "https://agenda.example/")
    assert len(mailer.sent) == 2
    assert any("PREMIER" in mail for _, _, mail in mailer.sent)
    assert any("SECOND" in mail for _, _, mail in mailer.sent)


# -- sessions, rights, terms -------------------------------------------------------------------

def test_sessions_store_only_hashes_and_end_on_logout(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    token = _open(db, "jeanne.martin@example.fr")
    with db.connect() as conn:
        assert conn.execute(select(user_sessions.c.token_hash)).scalar_one() == token_hash(token)
    assert _session_account(db, "not-a-token") is None
    with write_transaction(db) as conn:
        service.end_session(conn, token)
    assert _session_account(db, token) is None


def test_idle_sessions_expire(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    token = _open(db, "jeanne.martin@example.fr")
    with write_transaction(db) as conn:
        conn.execute(update(user_sessions).values(last_seen_at=utcnow() - timedelta(hours=3)))
    assert _session_account(db, token, idle=timedelta(hours=2)) is None
    assert _session_account(db, token) is None  # and it stays revoked


def test_regulator_rights_need_a_session_from_sas(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    local, from_sas = _open(db, "jeanne.martin@example.fr"), _open(
        db, "jeanne.martin@example.fr", from_sas=True)
    with write_transaction(db) as conn:
        account, session = service.load_session(conn, from_sas) or (None, None)
        assert account and session
        assert not service.has_regulator_rights(account, session)  # terms still pending
        account = service.accept_terms(conn, account)
        assert service.has_regulator_rights(account, session)
        local_account, local_session = service.load_session(conn, local) or (None, None)
        assert local_account and local_session
        assert not service.has_regulator_rights(local_account, local_session)


def test_accept_terms_keeps_the_first_date(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    with write_transaction(db) as conn:
        account = service.find_by_practitioner(conn, "regul-1")
        assert account is not None and account.terms_pending
        first = service.accept_terms(conn, account).terms_accepted_at
        assert first is not None
        assert service.accept_terms(conn, account).terms_accepted_at == first


def test_a_new_version_of_the_terms_is_accepted_again(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    with write_transaction(db) as conn:
        account = service.find_by_practitioner(conn, "regul-1")
        assert account is not None
        accepted = service.accept_terms(conn, account, "2020-01")
        assert accepted.terms_version == "2020-01" and accepted.terms_pending  # not current
        current = service.accept_terms(conn, accepted)
        assert current.terms_version == TERMS_VERSION and not current.terms_pending
        assert current.terms_accepted_at is not None
        assert current.terms_accepted_at >= accepted.terms_accepted_at  # type: ignore[operator]


# -- password resets ---------------------------------------------------------------------------

def test_reset_link_sets_a_new_password_once(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    set_password(db, "regul-1")
    token = _open(db, "jeanne.martin@example.fr")
    link = _reset_link(db, "JEANNE.MARTIN@example.fr")
    assert link
    with db.connect() as conn:
        assert conn.execute(select(password_resets.c.token_hash)).scalar_one() == token_hash(link)
    with write_transaction(db) as conn:
        service.reset_password(conn, link, NEW_PASSWORD)
    assert _login(db, "jeanne.martin@example.fr", NEW_PASSWORD) is not None
    assert _login(db, "jeanne.martin@example.fr") is None
    assert _session_account(db, token) is None  # whoever knew the old password is out
    with pytest.raises(service.InvalidResetToken), write_transaction(db) as conn:
        service.reset_password(conn, link, "encore un autre mot de passe")


def test_weak_password_keeps_the_link_usable(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    link = _reset_link(db, "jeanne.martin@example.fr")
    assert link
    with pytest.raises(service.WeakPassword, match="au moins 12"), \
            write_transaction(db) as conn:
        service.reset_password(conn, link, "court")
    with write_transaction(db) as conn:
        service.reset_password(conn, link, "x" * 12)
    assert _login(db, "jeanne.martin@example.fr", "x" * 12) is not None


def test_reset_links_expire(db: Engine) -> None:
    sync(db, "regul-1", regulator())
    link = _reset_link(db, "jeanne.martin@example.fr", ttl=timedelta(minutes=5))
    assert link
    with db.connect() as conn:
        created, expires = conn.execute(
            select(password_resets.c.created_at, password_resets.c.expires_at)).one()
    assert expires - created == timedelta(minutes=5)
    with write_transaction(db) as conn:
        conn.execute(update(password_resets).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert service.check_reset_token(conn, link) is None
    with pytest.raises(service.InvalidResetToken), write_transaction(db) as conn:
        service.reset_password(conn, link, NEW_PASSWORD)


def test_unknown_and_inactive_emails_get_no_mail(db: Engine) -> None:
    sync(db, "regul-1", regulator(active=False))
    assert _reset_link(db, "personne@example.fr") is None
    assert _reset_link(db, "jeanne.martin@example.fr") is None
    assert _count(db, password_resets) == 0


def test_mail_failure_is_logged_not_reported(db: Engine,
                                             caplog: pytest.LogCaptureFixture) -> None:
    sync(db, "regul-1", regulator())
    with write_transaction(db) as conn:
        service.request_password_reset(conn, "jeanne.martin@example.fr", BrokenMailer(),
                                       "https://agenda.example")
    assert "could not be sent" in caplog.text
