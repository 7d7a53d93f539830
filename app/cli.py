"""Command line: `fhir-agenda migrate | load FILE | load-demo | run …` (a Flask CLI group)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click
import orjson
from flask import current_app
from flask.cli import FlaskGroup

from app import create_app
from app.fhir import transactions
from app.state import state_of
from app.storage.migrate import upgrade


@click.group(cls=FlaskGroup, create_app=lambda: create_app())
def main() -> None:
    """SAS-ready FHIR agenda server."""


@main.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (Alembic)."""
    state = state_of(current_app)
    upgrade(state.engine)
    click.echo(f"Database at {state.engine.url.render_as_string(hide_password=True)} is up "
               "to date")


def _bundles_from_file(path: Path) -> list[dict[str, Any]]:
    """A Bundle file, a JSON array of resources, or NDJSON (one resource per line)."""
    raw = path.read_bytes()
    stripped = raw.lstrip()
    if stripped.startswith(b"{") and path.suffix != ".ndjson":
        document = orjson.loads(raw)
        if document.get("resourceType") == "Bundle" and document.get("type") in {
                "transaction", "batch"}:
            return [document]
        resources = [e["resource"] for e in document.get("entry", [])] if (
            document.get("resourceType") == "Bundle") else [document]
    elif stripped.startswith(b"["):
        resources = orjson.loads(raw)
    else:
        resources = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    return [as_transaction(resources)]


def as_transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """PUT each resource that has an id (idempotent), POST the others."""
    entries = []
    for resource in resources:
        kind = resource["resourceType"]
        if resource.get("id"):
            request = {"method": "PUT", "url": f"{kind}/{resource['id']}"}
        else:
            request = {"method": "POST", "url": kind}
        entries.append({"resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _load(bundle: dict[str, Any]) -> int:
    result = transactions.process(state_of(current_app), bundle, "minimal", "fhir-agenda cli")
    return len(result.get("entry", []))


@main.command("load")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(files: tuple[Path, ...]) -> None:
    """Load Bundle, JSON-array or NDJSON files (all-or-nothing per file)."""
    for path in files:
        count = sum(_load(b) for b in _bundles_from_file(path))
        click.echo(f"{path}: {count} entries loaded")


@main.command("load-demo")
@click.option("--days", default=7, show_default=True, help="Days of slots from today")
def load_demo_command(days: int) -> None:
    """Load the French demo dataset with slots for the coming days (idempotent)."""
    from app.demo import build_demo_bundle

    count = _load(build_demo_bundle(date.today(), days=days))
    click.echo(f"Demo data loaded: {count} entries")


@main.command("reindex")
def reindex_command() -> None:
    """Rebuild the search indexes and the SAS projection from the stored resources."""
    from app.db import write_transaction
    from app.sas import place_projection, slot_projection
    from app.storage.indexer import reindex_all

    state = state_of(current_app)
    settings = state.settings
    with write_transaction(state.engine) as conn:
        count = reindex_all(conn, default_tz=settings.default_timezone,
                            local_base=settings.fhir_base_url)
        slots = slot_projection.rebuild(conn, settings.default_timezone, settings.fhir_base_url)
        # After the index: place resolution reads search_reference.
        published = place_projection.rebuild(conn, settings.fhir_base_url,
                                   settings.local_identifier_system)
    click.echo(f"{count} resources reindexed, {slots} slots and {published} practice places "
               "visible to SAS")


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
