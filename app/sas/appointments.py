"""FrAppointmentSAS: how an appointment booked by a regulator is told to SAS (INT_R03).

An appointment at a fixed consultation place of an SOS Médecins association (its slot's
Schedule, or a Location participant, is such a place: `sas_sos_place`) follows the SOS
profile instead (sas-sos-appointment): a pending appointment is told too, the effectors'
statuses are accepted or needs-action (awaiting the effector's confirmation), and, until an
effector is named, the place itself is the participant.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, select

from app.identifiers import (
    IDENTIFIER_TYPE_SYSTEM,
    IDNPS_SYSTEM,
    SAS_TECHNICAL_SYSTEM,
    idnps,
)
from app.sas import codes
from app.sas.regulators import is_regulator
from app.search.extract import parse_reference
from app.storage.schema import resources, sas_sos_place

OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
APPOINTMENT_PROFILE = "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
# Our statuses → the four SAS follows; others (proposed, pending, waitlist) are not told.
SAS_STATUS = {"booked": "booked", "arrived": "booked", "checked-in": "booked",
              "fulfilled": "fulfilled", "noshow": "noshow", "cancelled": "cancelled",
              "entered-in-error": "cancelled"}
SOS_STATUS = {**SAS_STATUS, "pending": "pending"}
AWAITING = frozenset({"needs-action", "tentative"})  # the effector has not confirmed yet

Resource = dict[str, Any]


def _load(conn: Connection, reference: str | None, base: str) -> Resource | None:
    if not reference:
        return None
    kind, res_id, url = parse_reference(reference, base)
    if kind is None or res_id is None or url is not None:
        return None
    row = conn.execute(select(resources.c.content).where(
        resources.c.res_type == kind, resources.c.res_id == res_id,
        resources.c.deleted.is_(False))).first()
    return orjson.loads(row[0]) if row else None


def _typed(system: str, code: str, value: str) -> Resource:
    return {"type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": code}]},
            "system": system, "value": value}


def operator(conn: Connection, appointment: Resource, base: str, *,
             active_only: bool = True) -> Resource | None:
    """The regulator account named by the FrAppointmentOperator extension (active only,
    unless SAS already knows the appointment: its later changes must reach SAS even after
    the regulator has left)."""
    for extension in appointment.get("extension") or []:
        if extension.get("url") != OPERATOR_EXTENSION:
            continue
        reference = (extension.get("valueReference") or {}).get("reference")
        practitioner = _load(conn, reference, base)
        if practitioner and is_regulator(practitioner) and (
                practitioner.get("active") is True or not active_only):
            return practitioner
    return None


def operator_identifier(regulator: Resource) -> Resource | None:
    """National id when the regulator has one, else the SAS technical id."""
    identifiers = {i.get("system"): i.get("value") for i in regulator.get("identifier") or []}
    if identifiers.get(IDNPS_SYSTEM):
        return _typed(IDNPS_SYSTEM, "IDNPS", idnps(str(identifiers[IDNPS_SYSTEM])))
    if identifiers.get(SAS_TECHNICAL_SYSTEM):
        return _typed(SAS_TECHNICAL_SYSTEM, "INTRN", str(identifiers[SAS_TECHNICAL_SYSTEM]))
    return None


def _effectors(conn: Connection, appointment: Resource, base: str, regulator_id: str,
               sos: bool = False) -> list[Resource]:
    """The doctors taking the appointment, by IDNPS: accepted (the SAS rule), or for SOS
    Médecins accepted or needs-action as each is (declined ones are not effectors)."""
    pending = appointment.get("status") == "pending"
    found = []
    for participant in appointment.get("participant") or []:
        if sos and participant.get("status") == "declined":
            continue
        status = "needs-action" if sos and (pending or participant.get(
            "status") in AWAITING) else "accepted"
        reference = (participant.get("actor") or {}).get("reference", "")
        actor = _load(conn, reference, base)
        if actor and actor.get("resourceType") == "PractitionerRole":
            actor = _load(conn, (actor.get("practitioner") or {}).get("reference"), base)
        if not actor or actor.get("resourceType") != "Practitioner" or (
                actor.get("id") == regulator_id or is_regulator(actor)):
            continue
        for identifier in actor.get("identifier") or []:
            if identifier.get("system") == IDNPS_SYSTEM and identifier.get("value"):
                found.append({"actor": {"identifier": _typed(
                    IDNPS_SYSTEM, "IDNPS", idnps(str(identifier["value"])))},
                    "status": status})
                break
    return found


def technical_id(appointment_id: str, base: str) -> str:
    """One stable UUID per appointment, derived from its address on this server."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/Appointment/{appointment_id}"))


def sos_place(conn: Connection, appointment: Resource, base: str) -> Resource | None:
    """The SOS Médecins place (its sas-sos-location-aggregator shape) the appointment is
    taken at: the place of its slot's Schedule, or a Location participant that is one."""
    schedules = []
    for reference in appointment.get("slot") or []:
        slot = _load(conn, reference.get("reference") if isinstance(reference, dict) else None,
                     base)
        if slot and slot.get("resourceType") == "Slot":
            kind, schedule_id, url = parse_reference(
                (slot.get("schedule") or {}).get("reference", ""), base)
            if kind == "Schedule" and schedule_id and url is None:
                schedules.append(schedule_id)
    locations = [parse_reference(reference, base)[1] for p in appointment.get("participant") or []
                 if (reference := (p.get("actor") or {}).get("reference", "")).startswith(
                     "Location/")]
    if not schedules and not locations:
        return None
    row = conn.execute(select(sas_sos_place.c.location).where(
        sas_sos_place.c.schedule_id.in_(schedules)
        | sas_sos_place.c.location_id.in_([i for i in locations if i])).limit(1)).first()
    return orjson.loads(row[0]) if row else None


def _place_participant(place: Resource, appointment: Resource) -> Resource:
    """Until a doctor is named, the place takes the appointment (SAS knows it by the
    identifier and name of the SOS search's Location)."""
    pending = appointment.get("status") == "pending"
    return {"actor": {"identifier": place["identifier"][0], "display": place["name"]},
            "status": "needs-action" if pending else "accepted"}


def sas_appointment(conn: Connection, appointment: Resource, base: str,
                    identifier_system: str, *, announced: bool = False) -> Resource | None:
    """The FrAppointmentSAS (or sas-sos-appointment) to send, or None when SAS has nothing
    to know of it."""
    regulator = operator(conn, appointment, base, active_only=not announced)
    place = sos_place(conn, appointment, base) if regulator is not None else None
    status = (SOS_STATUS if place else SAS_STATUS).get(appointment.get("status", ""))
    if regulator is None or status is None:
        return None
    operator_id = operator_identifier(regulator)
    effectors = _effectors(conn, appointment, base, regulator["id"], sos=place is not None)
    if place is not None and not effectors:
        effectors = [_place_participant(place, appointment)]
    if operator_id is None or not effectors or not appointment.get("start"):
        return None
    profile = codes.SOS_APPOINTMENT_PROFILE if place else APPOINTMENT_PROFILE
    shaped: Resource = {
        "resourceType": "Appointment",
        "meta": {"profile": [profile]},
        "extension": [{"url": OPERATOR_EXTENSION, "valueReference": {"identifier": operator_id}}],
        "identifier": [{"system": identifier_system,
                        "value": technical_id(appointment["id"], base)}],
        "status": status,
        "start": appointment["start"],
        "end": appointment.get("end") or appointment["start"],
    }
    if appointment.get("created"):
        shaped["created"] = appointment["created"]
    shaped["participant"] = effectors
    return shaped
