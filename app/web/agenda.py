"""The booking page SAS's links open: `/agenda/<schedule>?creneau=<slot>` (+ `&origin=sas`).

Who gets here: a regulator SAS sends, signed in through SSO (or a password) in a session
that came with SAS's `origin`. The page shows the practitioner's SAS-visible free slots of
the next 72 hours (the SAS search's own projections), the chosen one highlighted, and the
patient form; confirming books through the repository (app/web/booking.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from app.auth.sso import sso_client
from app.clock import utc_now
from app.sas.agenda import PublishedAgenda, published_agenda
from app.state import current_state
from app.web import display
from app.web.blueprint import web
from app.web.booking import SlotTaken, book
from app.web.current import current_account, current_session
from app.web.forms import read_booking
from app.web.origin import allowed
from app.web.pages import error_page
from app.web.signin import account_label, booking_refusal, drop_session
from app.web.sso import start_sso

TAKEN = "Ce créneau vient d'être pris : choisissez-en un autre ci-dessous."
FIELDS = ("nom", "prenom", "naissance", "telephone", "email")


def _window() -> tuple[Any, Any]:
    now = utc_now()
    return now, now + timedelta(hours=current_state().settings.sas_max_window_hours)


def _agenda(schedule_id: str) -> PublishedAgenda | None:
    with current_state().reading() as repo:
        return published_agenda(repo, schedule_id, *_window())


def _page(agenda: PublishedAgenda, chosen: str | None, *, status: int = 200,
          notice: str | None = None, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None) -> Any:
    offered = {slot["id"] for slot in agenda.slots}
    if chosen and chosen not in offered and notice is None:
        notice = "Le créneau choisi sur le SAS n'est plus disponible : choisissez-en un autre."
    return render_template(
        "agenda.html", agenda=agenda, days=display.by_day(agenda.slots),
        chosen=chosen if chosen in offered else None, notice=notice, errors=errors or {},
        # The first wrong field takes the focus (and comes into view), without a script.
        focus=next((name for name in FIELDS if name in (errors or {})), None),
        values=values or {}, practitioner=display.holder(agenda),
        specialty=display.specialty(agenda.role or {}), place=agenda.place,
        address=display.address(agenda.place),
        phones=display.phones(agenda.role or agenda.place or {})), status


def _gate(schedule_id: str) -> Any | None:
    """None when this browser may book here; else where it goes instead."""
    origin = allowed(request.args.get("origin"))
    here = request.full_path.rstrip("?")
    account, user_session = current_account(), current_session()
    if account is None or user_session is None:
        if origin:  # SAS's link: straight to the SSO provider (one HTTP redirect)
            return start_sso(here)
        flash("Connectez-vous pour accéder à cet agenda.")
        return redirect(url_for("web.login", next=here))
    if origin and not user_session.from_sas:
        # Signed in another way, now arriving from SAS: sign in again, from SAS this time.
        if sso_client() is not None:
            return start_sso(here)
        drop_session()
        return redirect(url_for("web.login", next=here))
    return booking_refusal(f"Schedule/{schedule_id}")


@web.route("/agenda/<schedule_id>", methods=["GET", "POST"])
def agenda(schedule_id: str) -> Any:
    refused = _gate(schedule_id)
    if refused is not None:
        return refused
    found = _agenda(schedule_id)
    if found is None:
        return error_page(404, "Cet agenda n'est pas ouvert à la prise de rendez-vous par "
                               "le SAS.")
    chosen = request.args.get("creneau")
    if request.method == "GET":
        return _page(found, chosen)
    return _book(found)


def _book(found: PublishedAgenda) -> Any:
    values = {name: request.form.get(name, "") for name in FIELDS}
    chosen = request.form.get("creneau")
    data, errors = read_booking(request.form)
    if data is None:
        return _page(found, chosen, status=400, errors=errors, values=values,
                     notice="Le formulaire contient des erreurs : corrigez les champs "
                            "signalés.")
    account = current_account()
    assert account is not None
    if data["creneau"] not in {slot["id"] for slot in found.slots}:
        return _page(found, None, status=409, notice=TAKEN, values=values)
    try:
        appointment_id = book(current_state(), account_label(account), request.remote_addr,
                              account, found.participant, data["creneau"], data)
    except SlotTaken:
        refreshed = _agenda(found.schedule_id) or found
        return _page(refreshed, None, status=409, notice=TAKEN, values=values)
    flash("Le rendez-vous est confirmé. Il sera transmis à la plateforme numérique SAS.")
    return redirect(url_for("web.appointment", appointment_id=appointment_id), 303)
