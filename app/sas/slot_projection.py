"""Keep `sas_slot` in step with Slot writes: the SAS search reads only this table for slots.

Runs as a repository interceptor, so the projection commits or rolls back with the write.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert

from app.sas.shape import is_sas_visible, slot
from app.search.dates import parse_range
from app.search.extract import parse_reference
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository
from app.storage.scan import scan
from app.storage.schema import sas_slot


def projection_row(resource: dict[str, Any], pk: int, tz: str,
                   local_base: str) -> dict[str, Any] | None:
    """The `sas_slot` row of a Slot, or None when SAS may not see it."""
    if not is_sas_visible(resource) or not resource.get("start") or not resource.get("end"):
        return None
    target_type, schedule_id, url = parse_reference(
        (resource.get("schedule") or {}).get("reference", ""), local_base)
    if target_type != "Schedule" or schedule_id is None or url is not None:
        return None
    try:
        start = parse_range(resource["start"], tz)[0]
        fragment = orjson.dumps(slot(resource, schedule_id, tz)).decode()
    except (OverflowError, ValueError):
        return None  # a date at the edge of the calendar: not a slot anyone can book
    return {"slot_pk": pk, "slot_id": resource["id"], "schedule_id": schedule_id,
            "start": start, "fragment": fragment}


class SasSlotProjection(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Slot" or event.stored is None:
            return
        repo.conn.execute(delete(sas_slot).where(sas_slot.c.slot_pk == event.stored.pk))
        if event.resource is None:
            return
        row = projection_row(event.resource, event.stored.pk, repo.settings.default_timezone,
                             repo.settings.fhir_base_url)
        if row is not None:
            repo.conn.execute(insert(sas_slot).values(**row))


def rebuild(conn: Connection, tz: str = "Europe/Paris", local_base: str = "",
            batch_size: int = 5000) -> int:
    """Recompute the whole projection from the stored Slots (migrations, operators)."""
    conn.execute(delete(sas_slot))
    count = 0
    for batch in scan(conn, ("Slot",), batch_size):
        rows = [r for r in (projection_row(orjson.loads(row.content), row.pk, tz, local_base)
                            for row in batch) if r is not None]
        if rows:
            conn.execute(insert(sas_slot), rows)
            count += len(rows)
    return count
