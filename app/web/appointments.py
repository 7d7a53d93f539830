"""The regulator's appointments: those he booked on our pages, each with its confirmation
page, and his actions on them (cancel, honoured, not honoured), each sent to SAS as a new
version of the Appointment (INT_R03 reacts to Appointment writes)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from app.clock import utc_now
from app.outcome import FhirError
from app.sas.agenda import published_agenda
from app.search.extract import parse_reference
from app.state import current_state
from app.storage.repository import Repository
from app.web import display
from app.web.blueprint import web
from app.web.booking import ACTIONS, Booking, NotChangeable, bookings, change
from app.web.current import current_account
from app.web.pages import error_page
from app.web.signin import account_label, booking_refusal

DONE = {"annuler": "Le rendez-vous est annulé.",
        "honore": "Le rendez-vous est marqué comme honoré.",
        "non-honore": "Le rendez-vous est marqué comme non honoré."}
NOT_FOUND = "Ce rendez-vous n'existe pas ou n'a pas été pris par vous."


def _local(repo: Repository, reference: str | None, kind: str) -> dict[str, Any] | None:
    found_kind, found_id, url = parse_reference(reference or "", repo.settings.fhir_base_url)
    if found_kind != kind or found_id is None or url is not None:
        return None
    stored = repo.find(kind, found_id)
    return stored.as_dict() if stored and not stored.deleted else None


def _view(repo: Repository, booking: Booking) -> dict[str, Any]:
    """What the confirmation page shows of an appointment."""
    appointment = booking.appointment
    actors = [p.get("actor", {}).get("reference") for p in appointment.get("participant", [])]
    practitioner = next((r for r in (_local(repo, a, "Practitioner") for a in actors) if r),
                        None)
    slot = _local(repo, (appointment.get("slot") or [{}])[0].get("reference"), "Slot")
    schedule = (slot or {}).get("schedule", {}).get("reference", "")
    now = utc_now()
    agenda = published_agenda(repo, schedule.rsplit("/", 1)[-1], now, now) if schedule else None
    return {"id": appointment["id"], "status": appointment.get("status"),
            "status_label": display.STATUS.get(appointment.get("status", ""), "—"),
            "when": display.when(appointment["start"], appointment.get("end")),
            "types": display.consultation_types(appointment),
            "reasons": display.reasons(appointment),
            "practitioner": (display.holder(agenda) if agenda
                             else display.person_name(practitioner)),
            "address": display.address(agenda.place) if agenda else None,
            "place": (agenda.place or {}).get("name") if agenda else None,
            "patient": booking.patient or {},
            "patient_name": display.person_name(booking.patient),
            "open": appointment.get("status") in {"booked", "arrived", "checked-in"}}


@web.get("/rendez-vous")
def appointments() -> Any:
    refused = booking_refusal("Appointment")
    if refused is not None:
        return refused
    account = current_account()
    assert account is not None
    with current_state().reading() as repo:
        views = [_view(repo, b) for b in bookings(repo, account)]
    # His own feed, to subscribe to in a calendar program (app/gap/feeds.py; imported here:
    # the feeds read bookings through this package).
    from app.gap.feeds import feed_url, regulator_path

    feed = feed_url(current_app._get_current_object(), regulator_path(account.pk))
    return render_template("mes_rendez_vous.html", appointments=views, ical_url=feed)


@web.get("/rendez-vous/<appointment_id>")
def appointment(appointment_id: str) -> Any:
    refused = booking_refusal(f"Appointment/{appointment_id}")
    if refused is not None:
        return refused
    account = current_account()
    assert account is not None
    with current_state().reading() as repo:
        found = bookings(repo, account, appointment_id)
        if not found:
            return error_page(404, NOT_FOUND)
        view = _view(repo, found[0])
    return render_template("rendez_vous.html", rdv=view, actions=ACTIONS)


@web.post("/rendez-vous/<appointment_id>/<action>")
def appointment_action(appointment_id: str, action: str) -> Any:
    refused = booking_refusal(f"Appointment/{appointment_id}")
    if refused is not None:
        return refused
    if action not in ACTIONS:
        return error_page(404, "Cette action n'existe pas.")
    account = current_account()
    assert account is not None
    try:
        changed = change(current_state(), account_label(account), request.remote_addr,
                         account, appointment_id, action)
    except NotChangeable as closed:
        status = display.STATUS.get(str(closed), str(closed)).lower()
        flash(f"Ce rendez-vous ne peut plus être modifié (statut : {status}).")
        return redirect(url_for("web.appointment", appointment_id=appointment_id), 303)
    except FhirError as error:  # changed meanwhile through the API (If-Match), or gone
        flash(f"Le rendez-vous a changé entre-temps, rien n'a été modifié ({error.status}).")
        return redirect(url_for("web.appointment", appointment_id=appointment_id), 303)
    if changed is None:
        return error_page(404, NOT_FOUND)
    flash(DONE[action])
    return redirect(url_for("web.appointment", appointment_id=appointment_id), 303)
