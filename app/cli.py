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
    from app.sas.projection import rebuild
    from app.storage.indexer import reindex_all

    state = state_of(current_app)
    settings = state.settings
    with write_transaction(state.engine) as conn:
        count = reindex_all(conn, default_tz=settings.default_timezone,
                            local_base=settings.fhir_base_url)
        slots = rebuild(conn, settings.default_timezone, settings.fhir_base_url)
    click.echo(f"{count} resources reindexed, {slots} slots visible to SAS")
