"""Command line: `fhir-agenda migrate | load FILE | load-demo | run …` (a Flask CLI group)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click
import orjson
from flask import Flask, current_app
from flask.cli import FlaskGroup

from app import create_app
from app.fhir import bulk_load, transactions
from app.gap.feeds import ical_url_command
from app.gap.ical_import import import_ics_command
from app.ops.runtime import tune_garbage_collector
from app.ops.selftest.command import selftest_command
from app.state import state_of
from app.storage.migrate import upgrade

PROGRESS_EVERY = 500  # lines between two updates of `load`'s progress bar

def _create_app() -> Flask:
    """The server's application, on the server's settings and checks (app/ops/startup.py)."""
    from app.ops.startup import UnsafeSettings, process_settings

    try:
        settings = process_settings()
    except (UnsafeSettings, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    app = create_app(settings)
    tune_garbage_collector()
    return app


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """SAS-ready FHIR agenda server."""


# A client of a deployment, not of this configuration: no application to load.
main.add_command(selftest_command)
# iCalendar: a feed's URL to subscribe to, availability rules from an .ics file.
main.add_command(ical_url_command)
main.add_command(import_ics_command)


@main.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (Alembic)."""
    state = state_of(current_app)
    upgrade(state.engine)
    click.echo(f"Database at {state.engine.url.render_as_string(hide_password=True)} is up "
               "to date")


def _bundle_from_file(path: Path) -> dict[str, Any]:
    """A Bundle file, or a JSON array of resources (written as one transaction)."""
    document = orjson.loads(path.read_bytes())
    if isinstance(document, dict) and document.get("resourceType") == "Bundle" and (
            document.get("type") in {"transaction", "batch"}):
        return document
    if isinstance(document, dict):
        document = [e["resource"] for e in document.get("entry", [])] if (
            document.get("resourceType") == "Bundle") else [document]
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [bulk_load.entry_for(resource) for resource in document]}


def _load(bundle: dict[str, Any]) -> int:
    result = transactions.process(state_of(current_app), bundle, "minimal", "fhir-agenda cli")
    return len(result.get("entry", []))


def _is_ndjson(path: Path) -> bool:
    """NDJSON: named so, or a first line that is a whole JSON object with more lines after."""
    if path.suffix == ".ndjson":
        return True
    with path.open("rb") as file:
        first = file.readline()
    try:
        return isinstance(orjson.loads(first), dict) and path.stat().st_size > len(first)
    except orjson.JSONDecodeError:
        return False


def _load_ndjson(path: Path) -> None:
    """One transaction per file, a progress bar on stderr, every rejected line reported."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TransferSpeedColumn(),
               TextColumn("{task.fields[lines]} lines"))
    with Progress(*columns, console=console, transient=True) as bar, path.open("rb") as file:
        task = bar.add_task(path.name, total=path.stat().st_size, lines=0)
        read = {"bytes": 0, "lines": 0}

        def advance(size: int) -> None:
            # The bar is redrawn a few times a second: updating it per line would cost
            # more than writing the line.
            read["bytes"] += size
            read["lines"] += 1
            if read["lines"] % PROGRESS_EVERY == 0:
                bar.update(task, completed=read["bytes"], lines=read["lines"])

        report = bulk_load.load(state_of(current_app), file, "fhir-agenda cli",
                                progress=advance)
        bar.update(task, completed=read["bytes"], lines=read["lines"])
    if report.committed:
        click.echo(f"{path}: {report.written} resources loaded")
        return
    for rejection in report.rejections:
        click.echo(f"{path}: {rejection.describe()}", err=True)
    raise click.ClickException(f"{path}: {len(report.rejections)} of {report.lines} lines "
                               "rejected; nothing was loaded from this file")


@main.command("load")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(files: tuple[Path, ...]) -> None:
    """Load NDJSON, Bundle or JSON-array files, each all-or-nothing. NDJSON (one resource
    per line) is the bulk path: a progress bar, and every rejected line reported."""
    for path in files:
        if _is_ndjson(path):
            _load_ndjson(path)
        else:
            click.echo(f"{path}: {_load(_bundle_from_file(path))} entries loaded")


@main.command("load-demo")
@click.option("--days", default=7, show_default=True, help="Days of slots from today")
def load_demo_command(days: int) -> None:
    """Load the French demo dataset with slots for the coming days, and the demo
    regulator account (idempotent)."""
    from app.demo import build_demo_bundle, demo_regulators_bundle

    # Slot.comment as the SAS answer gives it: this server's booking page.
    page = state_of(current_app).settings.public_web_url + "/agenda/{schedule}?creneau={slot}"
    count = _load(build_demo_bundle(date.today(), days=days, booking_url=page))
    count += _load(demo_regulators_bundle())
    click.echo(f"Demo data loaded: {count} entries")


@main.command("sas-link")
@click.argument("schedule", default="demo-agenda-martin-pentes")
@click.option("--origin", default="sas", show_default=True, help="What SAS appends")
def sas_link_command(schedule: str, origin: str) -> None:
    """Print the booking link SAS would open for the next free slot of SCHEDULE (its
    Slot.comment in the SAS answer, `&origin=…` appended)."""
    from datetime import timedelta

    from app.clock import utc_now
    from app.sas.agenda import published_agenda
    from app.sas.aggregator import booking_url

    state = state_of(current_app)
    now = utc_now()
    with state.reading() as repo:
        agenda = published_agenda(repo, schedule, now,
                                  now + timedelta(hours=state.settings.sas_max_window_hours))
    if agenda is None or not agenda.slots:
        raise click.ClickException(f"No free slot of Schedule/{schedule} is offered to SAS "
                                   "in the next 72 hours (fhir-agenda load-demo?)")
    click.echo(booking_url(state.settings.public_web_url, schedule, agenda.slots[0]["id"])
               + f"&origin={origin}")


@main.command("reindex")
def reindex_command() -> None:
    """Rebuild the search indexes and the SAS projection from the stored resources."""
    from app.db import write_transaction
    from app.sas import cpts_projection, place_projection, slot_projection, sos_projection
    from app.storage.indexer import reindex_all

    state = state_of(current_app)
    settings = state.settings
    with write_transaction(state.engine) as conn:
        count = reindex_all(conn, default_tz=settings.default_timezone,
                            local_base=settings.fhir_base_url)
        # After the index (places read search_reference); SOS places before the slots,
        # whose SOS shape depends on them.
        sos = sos_projection.rebuild(conn, settings.fhir_base_url,
                                     settings.local_identifier_system)
        slots = slot_projection.rebuild(conn, settings.default_timezone, settings.fhir_base_url)
        published = place_projection.rebuild(conn, settings.fhir_base_url,
                                   settings.local_identifier_system)
        cpts = cpts_projection.rebuild(conn, settings.fhir_base_url)
    click.echo(f"{count} resources reindexed, {slots} slots, {published} practice places, "
               f"{cpts} CPTS offers and {sos} SOS Médecins places visible to SAS")


@main.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit")
def worker_command(once: bool) -> None:
    """Deliver queued notifications (SAS, Subscriptions); run one or more anywhere."""
    from app.subscriptions.worker import Worker, serve_forever

    state = state_of(current_app)
    if once:
        click.echo(f"{Worker(state).run(once=True)} messages handled")
    else:
        serve_forever(state)


@main.command("derive-slots")
@click.option("--all", "everything", is_flag=True,
              help="Queue every Schedule that has availability rules first")
def derive_slots_command(everything: bool) -> None:
    """Derive now the slots of the Schedules whose availability rules are due (the worker
    does it on its own every few seconds)."""
    from app.gap.derivation import derive_due, queue_all

    state = state_of(current_app)
    queued = queue_all(state) if everything else None
    done = derive_due(state, budget_seconds=float("inf"))
    click.echo((f"{queued} Schedules with rules queued; " if queued is not None else "")
               + f"{done} Schedules derived")


@main.group("outbox")
def outbox_group() -> None:
    """Inspect and replay queued notifications."""


@outbox_group.command("list")
@click.option("--status", default="pending,delivering,parked", show_default=True)
@click.option("--limit", default=100, show_default=True)
def outbox_list(status: str, limit: int) -> None:
    from app.subscriptions import outbox

    with state_of(current_app).engine.connect() as conn:
        counts = outbox.counts(conn)
        rows = outbox.listing(conn, tuple(status.split(",")), limit)
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "empty")
    for row in rows:
        retrying = " (retrying)" if row["status"] == "pending" and row["attempts"] else ""
        click.echo(f"#{row['pk']} {row['status']}{retrying} attempts={row['attempts']} "
                   f"{row['method']} {row['url']} next={row['next_attempt_at']:%Y-%m-%d %H:%M:%S}"
                   f" last={row['last_status']} {(row['last_error'] or '')[:400]}")


@outbox_group.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every parked message")
def outbox_replay(ids: tuple[int, ...], replay_all: bool) -> None:
    """Put parked messages back in the queue."""
    from app.db import write_transaction
    from app.subscriptions import outbox

    if not ids and not replay_all:
        raise click.UsageError("Give message ids or --all")
    with write_transaction(state_of(current_app).engine) as conn:
        count = outbox.replay(conn, list(ids) or None)
    click.echo(f"{count} parked messages queued again")
