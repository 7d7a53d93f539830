"""People's roles and the rights each session opens (app/auth/roles.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from app.accounts.models import ROLES, TERMS_VERSION, Account, UserSession
from app.auth.roles import LABELS, ROLE_RIGHTS, Right, has_right, rights

NOW = datetime(2026, 11, 25, 12, 0)
ACCOUNT = Account(pk=1, practitioner_id="p1", email="a@example.fr", family="Martin",
                  given="Jeanne", role="staff", active=True, terms_accepted_at=NOW,
                  created_at=NOW, updated_at=NOW, deactivated_at=None,
                  terms_version=TERMS_VERSION)
SESSION = UserSession(pk=1, account_pk=1, from_sas=False, created_at=NOW, last_seen_at=NOW,
                      revoked_at=None)


def test_every_role_has_rights_and_every_right_a_french_label() -> None:
    assert set(ROLE_RIGHTS) == set(ROLES)
    assert set(LABELS) == set(Right)


@pytest.mark.parametrize(("role", "expected"), [
    ("practitioner", {Right.VIEW_AVAILABILITY, Right.MANAGE_OWN_AGENDA,
                      Right.VIEW_PATIENT_APPOINTMENTS}),
    ("staff", {Right.VIEW_AVAILABILITY, Right.MANAGE_CENTRE_AGENDAS, Right.BOOK_FOR_PATIENT,
               Right.VIEW_PATIENT_APPOINTMENTS}),
    # The administrator manages accounts, reads the audit trail and the service levels,
    # never patient data.
    ("administrator", {Right.MANAGE_ACCOUNTS, Right.VIEW_AUDIT, Right.VIEW_SUPERVISION}),
    ("regulator", set()),  # a password login: no regulator rights
])
def test_rights_of_each_role_in_a_local_session(role: str, expected: set[Right]) -> None:
    assert rights(replace(ACCOUNT, role=role), SESSION) == expected


def test_regulator_rights_only_in_a_session_that_came_from_sas() -> None:
    regulator = replace(ACCOUNT, role="regulator")
    from_sas = replace(SESSION, from_sas=True)
    assert rights(regulator, from_sas) == {Right.VIEW_AVAILABILITY, Right.BOOK_FOR_PATIENT}
    assert not has_right(regulator, SESSION, Right.BOOK_FOR_PATIENT)
    # Coming from SAS gives nothing more to the other roles.
    assert rights(ACCOUNT, from_sas) == rights(ACCOUNT, SESSION)


@pytest.mark.parametrize("closed", [
    {"account": {"active": False}}, {"account": {"terms_accepted_at": None}},
    {"account": {"terms_version": "2020-01"}},  # accepted an older text
    {"session": {"revoked_at": NOW}}, {"account": {"role": "unknown"}},
])
def test_no_rights_when_the_account_or_session_is_closed(closed: dict[str, dict[str, object]]
                                                         ) -> None:
    account = replace(ACCOUNT, **closed.get("account", {}))  # type: ignore[arg-type]
    session = replace(SESSION, from_sas=True, **closed.get("session", {}))  # type: ignore[arg-type]
    assert rights(account, session) == frozenset()
