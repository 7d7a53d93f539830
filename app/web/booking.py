"""What the booking pages write: a Patient and its Appointment on the chosen Slot, in one
transaction through the repository, so every interceptor sees them as it sees a FHIR client's
writes: the booking rule (app/scheduling: the Slot becomes busy, a taken Slot is a 409),
validation, the SAS projection, the INT_R03 notifier (FrAppointmentOperator = the
regulator), the audit trail. Then the regulator's own changes: cancelled, honoured, not
honoured — each one a new version that reaches SAS the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from app.accounts.models import REGULATOR, Account
from app.clock import format_instant, utc_now
from app.outcome import Conflict
from app.sas.appointments import OPERATOR_EXTENSION
from app.search.api import find, one_of
from app.state import AppState
from app.storage.repository import Repository
from app.storage.schema import web_bookings

Resource = dict[str, Any]
# What the regulator may do to an appointment he booked, and from which statuses.
ACTIONS = {"annuler": "cancelled", "honore": "fulfilled", "non-honore": "noshow"}
OPEN_STATUSES = frozenset({"booked", "arrived", "checked-in"})


class SlotTaken(Exception):
    """Another booking got the slot first (the booking rule's 409)."""


class NotChangeable(Exception):
    """The appointment is no longer open (already cancelled, honoured…)."""


@dataclass(frozen=True)
class Booking:
    appointment: Resource
    patient: Resource | None


def patient_resource(data: dict[str, Any]) -> Resource:
    telecom = [{"system": "phone", "value": data["telephone"]}]
    if data.get("email"):
        telecom.append({"system": "email", "value": data["email"]})
    return {"resourceType": "Patient", "active": True,
            "name": [{"use": "official", "family": data["nom"], "given": [data["prenom"]]}],
            "birthDate": data["naissance"].isoformat(), "telecom": telecom}


def appointment_resource(slot: Resource, participant: str, patient_id: str,
                         regulator_id: str | None) -> Resource:
    appointment: Resource = {"resourceType": "Appointment", "status": "booked"}
    if regulator_id:  # who booked, for SAS (INT_R03)
        appointment["extension"] = [{"url": OPERATOR_EXTENSION, "valueReference": {
            "reference": f"Practitioner/{regulator_id}"}}]
    for element in ("serviceType", "specialty", "appointmentType"):
        if slot.get(element):
            appointment[element] = slot[element]
    appointment.update({
        "start": slot["start"], "end": slot["end"], "created": format_instant(utc_now()),
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "participant": [
            {"actor": {"reference": participant},
             "required": "required", "status": "accepted"},
            {"actor": {"reference": f"Patient/{patient_id}"},
             "required": "required", "status": "accepted"}],
    })
    return appointment


def book(state: AppState, author: str, address: str | None, account: Account,
         participant: str, slot_id: str, patient: dict[str, Any]) -> str:
    """Create the Patient and the Appointment with `participant` (`Practitioner/…`, or an
    SOS place's `Location/…`); the appointment id. Raises SlotTaken."""
    try:
        with state.writing(author, address) as repo:
            slot = repo.read("Slot", slot_id).as_dict()
            patient_id = repo.create("Patient", patient_resource(patient)).resource_id
            regulator = account.practitioner_id if account.role == REGULATOR else None
            appointment_id = repo.create("Appointment", appointment_resource(
                slot, participant, patient_id, regulator)).resource_id
            repo.conn.execute(insert(web_bookings).values(
                account_pk=account.pk, appointment_id=appointment_id, patient_id=patient_id,
                created_at=utc_now()))
    except Conflict as taken:
        raise SlotTaken(str(taken)) from taken
    return appointment_id


def _booked_by(repo: Repository, account: Account, appointment_id: str | None = None,
               limit: int = 100) -> list[Any]:
    query = select(web_bookings).where(web_bookings.c.account_pk == account.pk)
    if appointment_id is not None:
        query = query.where(web_bookings.c.appointment_id == appointment_id)
    return list(repo.conn.execute(query.order_by(web_bookings.c.created_at.desc())
                                  .limit(limit)).all())


def _contents(repo: Repository, kind: str, ids: Sequence[str]) -> dict[str, Resource]:
    if not ids:
        return {}
    return {s.resource_id: s.as_dict() for s in find(repo.conn, kind, [("_id", one_of(ids))])}


def bookings(repo: Repository, account: Account, appointment_id: str | None = None
             ) -> list[Booking]:
    """The appointments this account booked on our pages (newest first), as they are now."""
    rows = _booked_by(repo, account, appointment_id)
    appointments = _contents(repo, "Appointment", [r.appointment_id for r in rows])
    patients = _contents(repo, "Patient", [r.patient_id for r in rows])
    return [Booking(appointments[r.appointment_id], patients.get(r.patient_id))
            for r in rows if r.appointment_id in appointments]


def change(state: AppState, author: str, address: str | None, account: Account,
           appointment_id: str, action: str) -> Resource | None:
    """Apply a regulator's action to an appointment he booked: the new version, or None
    when he did not book it. Raises NotChangeable when it is closed already."""
    status = ACTIONS[action]
    with state.writing(author, address) as repo:
        if not _booked_by(repo, account, appointment_id):
            return None
        current = repo.read("Appointment", appointment_id)
        appointment = current.as_dict()
        if appointment.get("status") not in OPEN_STATUSES:
            raise NotChangeable(appointment.get("status", ""))
        appointment["status"] = status
        if status == "cancelled":
            appointment["cancelationReason"] = {"text": "Annulé par le régulateur"}
        updated, _ = repo.update("Appointment", appointment_id, appointment,
                                 if_match=current.version)
        return updated.as_dict()
