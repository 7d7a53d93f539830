"""Import an agenda's availability from iCalendar: the VAVAILABILITY components of a file
(RFC 7953) replace the Schedule's FR Core availabilityTime extensions.

The new version is written through the repository like any other write: validated,
versioned, audited, seen by the interceptors that react to a Schedule's rules. The other
extensions of the Schedule (e.g. its service-type durations) are kept. A file that does not
say when the agenda is available (no VAVAILABILITY) or says it in a way FR Core cannot hold
(an RRULE part it has no place for, RDATE/EXDATE exceptions) is refused, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext

from app.gap import ical
from app.outcome import FhirError
from app.state import AppState, state_of

CLI_AUTHOR = "fhir-agenda cli (import-ics)"


@dataclass(frozen=True)
class Imported:
    version: int
    free: int
    unavailable: int


def import_ics(state: AppState, schedule_id: str, data: bytes | str, *,
               author: str = CLI_AUTHOR, address: str | None = None) -> Imported:
    """Replace the rules of Schedule/`schedule_id` by those of the iCalendar `data`.
    Raises IcsError (the file), or the FhirError a client would get (unknown Schedule,
    invalid result)."""
    zone = ZoneInfo(state.settings.default_timezone)
    rules = ical.rules_from_calendar(ical.parse_calendar(data), zone)
    extensions = [ical.extension_from_rule(rule, zone) for rule in rules]
    with state.writing(author, address) as repo:
        current = repo.read("Schedule", schedule_id)
        schedule = current.as_dict()
        kept = [e for e in schedule.get("extension") or []
                if not (isinstance(e, dict) and e.get("url") == ical.AVAILABILITY_URL)]
        schedule["extension"] = kept + extensions
        if not schedule["extension"]:
            del schedule["extension"]
        stored, _ = repo.update("Schedule", schedule_id, schedule, if_match=current.version)
    return Imported(stored.version, sum(r.kind == ical.FREE for r in rules),
                    sum(r.kind == ical.UNAVAILABLE for r in rules))


@click.command("import-ics")
@click.argument("schedule")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_ics_command(schedule: str, file: Path) -> None:
    """Replace the availability rules of SCHEDULE (`Schedule/ID`) by the VAVAILABILITY
    components of FILE (.ics)."""
    if not schedule.startswith("Schedule/"):
        raise click.UsageError("SCHEDULE is Schedule/ID")
    schedule_id = schedule.removeprefix("Schedule/")
    try:
        done = import_ics(state_of(current_app), schedule_id, file.read_bytes())
    except ical.IcsError as refused:
        raise click.ClickException(f"{file}: nothing imported:\n  - "
                                   + "\n  - ".join(refused.problems)) from refused
    except FhirError as refused:
        details = "\n  - ".join(issue.diagnostics for issue in refused.issues)
        raise click.ClickException(f"{schedule}: nothing imported ({refused.status}):\n  - "
                                   + details) from refused
    click.echo(f"{schedule}: version {done.version}, {done.free} availability and "
               f"{done.unavailable} unavailability rules from {file}")
