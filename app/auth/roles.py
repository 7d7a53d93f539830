"""People's roles and the rights each one opens on our web pages.

The roles follow the SAS interfacing agreement (regulators book for patients, only when
authenticated by the SAS platform) and the multi-professional-centre specifications
(profiles = sets of functions, each read or write): practitioners keep their own agenda,
the centre's staff (secretariat) keeps the centre's agendas and books for patients, the
administrator manages accounts and reads the audit trail but no patient data.
"""

from __future__ import annotations

from enum import StrEnum

from app.accounts.models import REGULATOR, Account, UserSession


class Right(StrEnum):
    VIEW_AVAILABILITY = "view-availability"  # free slots of the published agendas
    BOOK_FOR_PATIENT = "book-for-patient"  # create an appointment for a patient
    MANAGE_OWN_AGENDA = "manage-own-agenda"  # own schedules, slots and appointments
    MANAGE_CENTRE_AGENDAS = "manage-centre-agendas"  # every agenda of the centre
    VIEW_PATIENT_APPOINTMENTS = "view-patient-appointments"  # appointments with patient data
    MANAGE_ACCOUNTS = "manage-accounts"
    VIEW_AUDIT = "view-audit"
    VIEW_SUPERVISION = "view-supervision"  # service levels (the SLA page)


STAFF, PRACTITIONER, ADMINISTRATOR = "staff", "practitioner", "administrator"

ROLE_RIGHTS: dict[str, frozenset[Right]] = {
    REGULATOR: frozenset({Right.VIEW_AVAILABILITY, Right.BOOK_FOR_PATIENT}),
    PRACTITIONER: frozenset({Right.VIEW_AVAILABILITY, Right.MANAGE_OWN_AGENDA,
                             Right.VIEW_PATIENT_APPOINTMENTS}),
    STAFF: frozenset({Right.VIEW_AVAILABILITY, Right.MANAGE_CENTRE_AGENDAS,
                      Right.BOOK_FOR_PATIENT, Right.VIEW_PATIENT_APPOINTMENTS}),
    ADMINISTRATOR: frozenset({Right.MANAGE_ACCOUNTS, Right.VIEW_AUDIT, Right.VIEW_SUPERVISION}),
}

# French labels for the account page.
LABELS = {
    Right.VIEW_AVAILABILITY: "consulter les disponibilités",
    Right.BOOK_FOR_PATIENT: "prendre rendez-vous pour un patient",
    Right.MANAGE_OWN_AGENDA: "gérer son propre agenda",
    Right.MANAGE_CENTRE_AGENDAS: "gérer les agendas de la structure",
    Right.VIEW_PATIENT_APPOINTMENTS: "consulter les rendez-vous des patients",
    Right.MANAGE_ACCOUNTS: "gérer les comptes",
    Right.VIEW_AUDIT: "consulter la traçabilité des accès",
    Right.VIEW_SUPERVISION: "consulter la supervision du service",
}


def rights(account: Account, session: UserSession) -> frozenset[Right]:
    """The rights of this account in this session: none for an inactive account, a revoked
    session or terms not yet accepted; a regulator's only in a session that came from SAS
    (the platform authenticated them; our password alone never opens them)."""
    if not account.active or session.revoked_at is not None or account.terms_pending:
        return frozenset()
    if account.role == REGULATOR and not session.from_sas:
        return frozenset()
    return ROLE_RIGHTS.get(account.role, frozenset())


def has_right(account: Account, session: UserSession, right: Right) -> bool:
    return right in rights(account, session)
