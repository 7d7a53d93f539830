"""Keep `sas_cpts` exact: the CPTS offers (HealthcareService and CPTS Organization) that the
CPTS answer publishes beside the slots shared with them.

Runs as a repository interceptor, so the projection commits or rolls back with the write: a
HealthcareService write recomputes its row, an Organization write the rows of the
HealthcareServices it provides (those referring to it now, and those published from it).
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, delete, insert, select

from app.sas.cpts import service_rows
from app.sas.place_rules import contents
from app.search.api import referring
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import chunks
from app.storage.repository import Repository
from app.storage.scan import scan
from app.storage.schema import sas_cpts


def refresh(conn: Connection, base: str, service_ids: set[str]) -> None:
    for chunk in chunks(service_ids):
        conn.execute(delete(sas_cpts).where(sas_cpts.c.healthcareservice_id.in_(chunk)))
        rows = service_rows(conn, contents(conn, "HealthcareService", set(chunk)), base)
        if rows:
            conn.execute(insert(sas_cpts), rows)


def _provided_by(conn: Connection, organization_id: str) -> set[str]:
    published = set(conn.execute(select(sas_cpts.c.healthcareservice_id).where(
        sas_cpts.c.organization_id == organization_id)).scalars())
    return published | referring(conn, "HealthcareService", "organization",
                                 {"Organization": {organization_id}})


class SasCptsProjection(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.stored is None:
            return
        base = repo.settings.fhir_base_url
        if event.resource_type == "HealthcareService":
            refresh(repo.conn, base, {event.resource_id})
        elif event.resource_type == "Organization":
            refresh(repo.conn, base, _provided_by(repo.conn, event.resource_id))


def rebuild(conn: Connection, local_base: str, batch_size: int = 2000) -> int:
    """Recompute the whole projection (migrations, reindex); returns the published offers."""
    conn.execute(delete(sas_cpts))
    count = 0
    for batch in scan(conn, ("HealthcareService",), batch_size):
        rows = service_rows(conn, {r.resource_id: orjson.loads(r.content) for r in batch},
                            local_base)
        if rows:
            conn.execute(insert(sas_cpts), rows)
            count += len(rows)
    return count
