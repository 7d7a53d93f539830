"""Read-only iCalendar feeds that calendar programs (Thunderbird, Google Calendar, Apple
Calendar) subscribe to:

- `GET /ical/schedule/<id>.ics?token=…`: a practitioner's agenda — its availability rules
  (VAVAILABILITY), its slots (VFREEBUSY) and its appointments (VEVENT) from 30 days ago to
  90 days ahead;
- `GET /ical/regulator/<account number>.ics?token=…`: the appointments a regulator booked on
  our pages (the `web_bookings` of his account), same window.

A calendar program cannot sign in: the URL itself is the credential. Its token is an HMAC
(SHA-256) of the feed's path keyed with the server's secret (the key signing the web
sessions, SECRET_KEY), so it needs no storage and names one feed only; a wrong or missing
token answers 404 like an unknown feed, before anything is read, so that a URL never
confirms what exists. Patients are never named in a feed (the URL ends up in third-party
calendar services): events say with whom and where, and link to our pages for the rest.
Every feed that shows appointments is audited like a search that discloses them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import Blueprint, Flask, Response, current_app, request
from flask.cli import with_appcontext
from icalendar import Calendar, Component

from app.accounts.models import Account
from app.accounts.service import get_account
from app.audit.trail import disclosed, record
from app.clock import format_instant, utc_now
from app.gap import ical, ical_calendar
from app.search.api import find, one_of
from app.search.extract import parse_reference
from app.state import current_state, state_of
from app.storage.repository import Repository, Stored
from app.web.booking import bookings
from app.web.display import CONSULTATION, address

log = logging.getLogger(__name__)

feeds = Blueprint("ical", __name__)

PAST, FUTURE = timedelta(days=30), timedelta(days=90)
CACHE_CONTROL = "private, max-age=300"
# Says what the MAC is for: the session key signs other things too.
TOKEN_PURPOSE = b"fhir-agenda iCalendar feed\n"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Participants never shown in a feed (health data), and those shown as LOCATION instead.
PRIVATE_KINDS = frozenset({"Patient", "RelatedPerson"})
CUTYPES = {"Practitioner": "INDIVIDUAL", "PractitionerRole": "INDIVIDUAL",
           "Location": "ROOM", "Device": "RESOURCE", "HealthcareService": "GROUP",
           "Organization": "GROUP"}
OPERATOR_URL = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
PREFIXES = {"cancelled": "Annulé : ", "noshow": "Non honoré : "}

Resource = dict[str, Any]


# -- URLs and tokens -----------------------------------------------------------------------

def schedule_path(schedule_id: str) -> str:
    return f"/ical/schedule/{schedule_id}.ics"


def regulator_path(account_pk: int) -> str:
    return f"/ical/regulator/{account_pk}.ics"


def feed_token(secret: str | bytes, path: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, TOKEN_PURPOSE + path.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def feed_url(app: Flask, path: str) -> str:
    """The full URL to subscribe to (PUBLIC_WEB_URL based), token included."""
    base = state_of(app).settings.public_web_url.rstrip("/")
    return f"{base}{path}?token={feed_token(_secret(app), path)}"


def _secret(app: Flask) -> str | bytes:
    if not app.secret_key:  # set when the web pages are registered (app/web/security.py)
        raise RuntimeError("The application has no secret key to sign feed URLs")
    return app.secret_key


def _authorised(path: str) -> bool:
    given = request.args.get("token", "").encode()
    return hmac.compare_digest(given, feed_token(_secret(current_app), path).encode())


# -- routes ----------------------------------------------------------------------------------

@feeds.get("/ical/schedule/<schedule_id>.ics")
def schedule_feed(schedule_id: str) -> Response:
    path = schedule_path(schedule_id)
    if not FHIR_ID.match(schedule_id) or not _authorised(path):
        return _not_found()
    return _serve(f"iCalendar feed Schedule/{schedule_id}",
                  lambda repo, low, high: schedule_calendar(repo, schedule_id, low, high))


@feeds.get("/ical/regulator/<int:account_pk>.ics")
def regulator_feed(account_pk: int) -> Response:
    if not _authorised(regulator_path(account_pk)):
        return _not_found()
    return _serve(f"iCalendar feed of account {account_pk}",
                  lambda repo, low, high: regulator_calendar(repo, account_pk, low, high))


def _serve(agent: str, build: Builder) -> Response:
    state = current_state()
    now = utc_now().replace(tzinfo=UTC)
    with state.reading(agent, request.remote_addr) as repo:
        feed: Feed | None = build(repo, now - PAST, now + FUTURE)
    if feed is None:
        return _not_found()
    if feed.disclosed:
        record(state, "search-type", agent, request.remote_addr, feed.disclosed)
    response = Response(feed.calendar.to_ical(), status=200)
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _not_found() -> Response:
    response = Response("Not Found\n", status=404, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the calendars ---------------------------------------------------------------------------

@dataclass
class Feed:
    calendar: Calendar
    # The appointment versions shown (`Appointment/id/_history/n`), for the audit trail.
    disclosed: list[str] = field(default_factory=list)


Builder = Callable[[Repository, datetime, datetime], Feed | None]


def schedule_calendar(repo: Repository, schedule_id: str, low: datetime,
                      high: datetime) -> Feed | None:
    """A Schedule's rules, slots and appointments of [low, high); None when it is unknown."""
    stored = repo.find("Schedule", schedule_id)
    if stored is None or stored.deleted:
        return None
    schedule = stored.as_dict()
    settings = repo.settings
    zone = ZoneInfo(settings.default_timezone)
    directory = Directory(repo)
    actors = [p for p in (directory.party(a) for a in schedule.get("actor") or []) if p]
    rules, problems = ical.rules_of(schedule, zone)
    for problem in problems:
        log.warning("Schedule/%s: rule left out of its feed: %s", schedule_id, problem)
    components: list[Component] = ical.availability_components(
        rules, zone, uid=ical_calendar.resource_uid(schedule, settings.fhir_base_url),
        stamp=ical_calendar.version_time(schedule))
    components += _slots(repo, schedule_id, actors, low, high)
    appointments = _schedule_appointments(repo, schedule, low, high)
    location = directory.schedule_location(schedule)
    place = directory.place_label(location)
    shown: list[Stored] = []
    for appointment in appointments:
        resource = appointment.as_dict()
        event = ical_calendar.appointment_event(resource, _details(
            directory, resource, place=place), zone)
        if event is not None:
            components.append(event)
            shown.append(appointment)
    title = " – ".join(n for n in ("Agenda", _names(actors), (location or {}).get("name"))
                       if n)
    return Feed(ical_calendar.new_calendar(title, settings.default_timezone, components),
                disclosed(shown))


def regulator_calendar(repo: Repository, account_pk: int, low: datetime,
                       high: datetime) -> Feed | None:
    """The appointments an active account booked on our pages (its newest bookings)."""
    account = get_account(repo.conn, account_pk)
    if account is None or not account.active:
        return None
    settings = repo.settings
    zone = ZoneInfo(settings.default_timezone)
    directory = Directory(repo)
    components: list[Component] = []
    shown: list[str] = []
    for booking in bookings(repo, account):
        resource = booking.appointment
        if not _within(resource, low, high, zone):
            continue
        page = f"{settings.public_web_url.rstrip('/')}/rendez-vous/{resource['id']}"
        event = ical_calendar.appointment_event(resource, _details(
            directory, resource, with_holder=True, url=page), zone)
        if event is not None:
            components.append(event)
            shown.append(f"Appointment/{resource['id']}/_history/"
                         f"{(resource.get('meta') or {}).get('versionId', '1')}")
    return Feed(ical_calendar.new_calendar(_regulator_title(account), settings.default_timezone,
                                  components), shown)


def _regulator_title(account: Account) -> str:
    return " – ".join(p for p in ("Mes rendez-vous SAS", account.display_name) if p)


def _within(appointment: Resource, low: datetime, high: datetime, zone: ZoneInfo) -> bool:
    start = appointment.get("start")
    if not start:
        return False
    moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return low <= moment < high


def _window(param: str, low: datetime, high: datetime) -> list[tuple[str, str]]:
    return [(param, f"ge{format_instant(low)}"), (param, f"lt{format_instant(high)}")]


def _slots(repo: Repository, schedule_id: str, actors: list[ical_calendar.Party], low: datetime,
           high: datetime) -> list[Component]:
    settings = repo.settings
    found = find(repo.conn, "Slot", [("schedule", f"Schedule/{schedule_id}"),
                                     *_window("start", low, high)])
    components = []
    for stored in sorted(found, key=lambda s: str(s.as_dict().get("start"))):
        slot = stored.as_dict()
        uid = ical_calendar.resource_uid(slot, settings.fhir_base_url)
        component = ical_calendar.slot_freebusy(slot, uid, actors,
                                                ical_calendar.version_time(slot))
        if component is not None:
            components.append(component)
    return components


def _schedule_appointments(repo: Repository, schedule: Resource, low: datetime,
                           high: datetime) -> list[Stored]:
    """Booked on the Schedule's slots, or, without a slot, with one of its actors."""
    window = _window("date", low, high)
    found = {s.resource_id: s for s in find(repo.conn, "Appointment", [
        ("slot.schedule", f"Schedule/{schedule['id']}"), *window])}
    actors = [r for r in (a.get("reference") for a in schedule.get("actor") or [])
              if isinstance(r, str) and r.split("/")[0] in CUTYPES]
    if actors:
        for stored in find(repo.conn, "Appointment", [
                ("actor", one_of(actors)), ("slot:missing", "true"), *window]):
            found.setdefault(stored.resource_id, stored)
    return sorted(found.values(), key=lambda s: str(s.as_dict().get("start")))


def _details(directory: Directory, appointment: Resource, *, place: str | None = None,
             with_holder: bool = False, url: str | None = None) -> ical_calendar.EventDetails:
    attendees: list[ical_calendar.Party] = []
    places: list[str] = []
    for participant in appointment.get("participant") or []:
        actor = participant.get("actor") or {}
        kind = directory.kind(actor)
        if kind == "Location":
            label = directory.place_label(directory.resource(actor))
            if label:
                places.append(label)
            continue
        party = directory.party(actor, role=participant.get("required"),
                                status=participant.get("status"))
        if party is not None:
            attendees.append(party)
    operator = next((e.get("valueReference") for e in appointment.get("extension") or []
                     if e.get("url") == OPERATOR_URL), None)
    holder = next((a.name for a in attendees if a.kind == "INDIVIDUAL" and a.name), None)
    settings = directory.repo.settings
    return ical_calendar.EventDetails(
        uid=ical_calendar.resource_uid(appointment, settings.fhir_base_url),
        summary=_summary(appointment, holder if with_holder else None),
        attendees=attendees,
        organizer=directory.party(operator) if operator else None,
        location=places[0] if places else place or directory.appointment_place(appointment),
        url=url)


def _summary(appointment: Resource, holder: str | None) -> str:
    """E.g. « Rendez-vous avec Dr Hélène Dupont (téléconsultation) »; never the patient."""
    text = "Rendez-vous" + (f" avec {holder}" if holder else "")
    kinds = [CONSULTATION.get(c.get("code", "")) or concept.get("text")
             for concept in appointment.get("serviceType") or []
             for c in (concept.get("coding") or [{}])]
    kinds = [k for k in kinds if k]
    if kinds:
        text += f" ({kinds[0].lower()})"
    return PREFIXES.get(appointment.get("status", ""), "") + text


def _names(parties: Iterable[ical_calendar.Party]) -> str:
    names = [p.name for p in parties if p.name and p.kind == "INDIVIDUAL"]
    return ", ".join(dict.fromkeys(names))  # a practitioner and his role: one name


class Directory:
    """Who and where references name, read once per feed through the repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._cache: dict[str, Resource | None] = {}

    def kind(self, reference: Resource) -> str | None:
        kind, _, _ = parse_reference(str(reference.get("reference") or ""),
                                     self.repo.settings.fhir_base_url)
        return kind

    def resource(self, reference: Resource | None,
                 container: Resource | None = None) -> Resource | None:
        text = str((reference or {}).get("reference") or "")
        if text.startswith("#") and container is not None:  # a contained resource
            return next((c for c in container.get("contained") or []
                         if c.get("id") == text[1:]), None)
        kind, resource_id, url = parse_reference(text, self.repo.settings.fhir_base_url)
        if kind is None or resource_id is None or url is not None:
            return None
        key = f"{kind}/{resource_id}"
        if key not in self._cache:
            stored = self.repo.find(kind, resource_id)
            self._cache[key] = None if stored is None or stored.deleted else stored.as_dict()
        return self._cache[key]

    def party(self, reference: Resource, *, role: str | None = None,
              status: str | None = None) -> ical_calendar.Party | None:
        """A participant as a calendar address: its e-mail when it has one, else its URL."""
        text = str(reference.get("reference") or "")
        kind = self.kind(reference)
        if kind in PRIVATE_KINDS or not text or text.startswith("#"):
            return None  # a patient, or what we cannot tell is not one
        found = self.resource(reference)
        person = found
        if kind == "PractitionerRole" and found is not None:
            person = self.resource(found.get("practitioner")) or found
        name = reference.get("display") or _name(person) or _name(found)
        email = _email(found) or _email(person)
        uri = f"mailto:{email}" if email else (
            text if "://" in text else f"{self.repo.settings.fhir_base_url}/{text}")
        return ical_calendar.Party(uri=uri, name=name, kind=CUTYPES.get(kind or ""), role=role,
                          status=status)

    def place_label(self, place: Resource | None) -> str | None:
        if not place:
            return None
        return ", ".join(p for p in (place.get("name"), address(place)) if p) or None

    def schedule_location(self, schedule: Resource) -> Resource | None:
        """The practice place of an agenda: a Location actor, or its role's location."""
        for actor in schedule.get("actor") or []:
            found = self.resource(actor)
            if found is None:
                continue
            if found.get("resourceType") == "Location":
                return found
            if found.get("resourceType") == "PractitionerRole":
                for location in found.get("location") or []:
                    place = self.resource(location, container=found)
                    if place:
                        return place
        return None

    def appointment_place(self, appointment: Resource) -> str | None:
        slot = self.resource((appointment.get("slot") or [{}])[0])
        schedule = self.resource((slot or {}).get("schedule"))
        return self.place_label(self.schedule_location(schedule)) if schedule else None


def _name(resource: Resource | None) -> str | None:
    if not resource:
        return None
    names = resource.get("name")
    if isinstance(names, str):  # Location, HealthcareService, Organization, Device…
        return names
    for name in names or []:
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family")]
        text = " ".join(p for p in parts if p) or name.get("text")
        if text:
            return str(text)
    return None


def _email(resource: Resource | None) -> str | None:
    return next((t.get("value") for t in (resource or {}).get("telecom") or []
                 if t.get("system") == "email" and t.get("value")), None)


# -- the command line ------------------------------------------------------------------------

@click.command("ical-url")
@click.argument("target")
@click.argument("account", required=False)
@with_appcontext
def ical_url_command(target: str, account: str | None) -> None:
    """Print the iCalendar feed URL of an agenda (`Schedule/ID`) or of the appointments a
    regulator booked (`regulator ACCOUNT_NUMBER`), to paste in a calendar program."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = state_of(app)
    with state.reading() as repo:
        if target.startswith("Schedule/"):
            schedule_id = target.removeprefix("Schedule/")
            found = repo.find("Schedule", schedule_id) if FHIR_ID.match(schedule_id) else None
            if found is None or found.deleted:
                raise click.ClickException(f"{target} is not known")
            path = schedule_path(schedule_id)
        elif target == "regulator" and account and account.isdigit():
            found_account = get_account(repo.conn, int(account))
            if found_account is None or not found_account.active:
                raise click.ClickException(f"Account {account} is not known or not active")
            path = regulator_path(int(account))
        else:
            raise click.UsageError("Give Schedule/ID, or regulator ACCOUNT_NUMBER")
    click.echo(feed_url(app, path))
