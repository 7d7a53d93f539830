"""The resource repository: versioned create/update/delete/read and history.

Every method runs inside the caller's transaction (one `Connection`), so that a single
interaction, a whole transaction Bundle, and anything hooked in through interceptors
(validation, audit, notifications) commit or roll back together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.clock import format_instant, utc_now
from app.config import Settings
from app.outcome import Conflict, Gone, NotFound, PreconditionFailed, Unprocessable
from app.storage import indexer
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.schema import resource_versions, resources

__all__ = ["Interceptor", "Repository", "Stored", "WriteEvent", "new_id"]
T = TypeVar("T")


@dataclass(frozen=True)
class Stored:
    """One version of a resource as kept in the database."""

    pk: int
    resource_type: str
    resource_id: str
    version: int
    last_updated: datetime
    deleted: bool
    content: str | None  # compact JSON, meta included
    method: str | None = None  # the interaction that made this version (history rows only)
    author: str | None = None  # who made it (history rows only)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def as_dict(self) -> dict[str, Any]:
        return orjson.loads(self.content) if self.content else {}


def new_id() -> str:
    return str(uuid.uuid4())


class Repository:
    """One unit of work: a transaction, who does it, and the interceptors it fires."""

    def __init__(self, conn: Connection, settings: Settings,
                 interceptors: Sequence[Interceptor] = (), author: str | None = None, *,
                 writable: bool = True, client_address: str | None = None,
                 search_variants: Sequence[Any] = ()) -> None:
        self.conn = conn
        self.settings = settings
        self.interceptors = interceptors
        self.author = author  # recorded on every version this repository writes
        self.client_address = client_address  # network address of the caller, for audit
        # A read transaction cannot write: what an interceptor must write about it (e.g. an
        # AuditEvent of a disclosure) runs in a transaction of its own once it has ended.
        self.writable = writable
        self.after_transaction: list[Callable[[], None]] = []
        # Searches answered in a shape of their own (app/search/variants.py).
        self.search_variants = search_variants
        # Inside a transaction Bundle, references may point at entries written later:
        # their checks wait here until every entry is written.
        self.deferred_checks: list[tuple[str, dict[str, Any]]] | None = None
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """A value computed once per unit of work (e.g. a caller's compartment), so that
        the entries of a Bundle share it."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]  # type: ignore[no-any-return]

    # -- reads ---------------------------------------------------------------------------

    def find(self, resource_type: str, resource_id: str, *, lock: bool = False) -> Stored | None:
        query = select(resources).where(resources.c.res_type == resource_type,
                                        resources.c.res_id == resource_id)
        if lock:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return stored_from_row(row) if row else None

    def read(self, resource_type: str, resource_id: str) -> Stored:
        found = self.find(resource_type, resource_id)
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if found.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted",
                       headers={"ETag": found.etag})
        return found

    def vread(self, resource_type: str, resource_id: str, version: int) -> Stored:
        row = self.conn.execute(
            select(resource_versions, resources.c.pk)
            .join(resources, resources.c.pk == resource_versions.c.res_pk)
            .where(resources.c.res_type == resource_type, resources.c.res_id == resource_id,
                   resource_versions.c.version == version)
        ).first()
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id}/_history/{version} is not known")
        stored = version_from_row(row)
        if stored.deleted:
            raise Gone(f"{resource_type}/{resource_id} version {version} is a deletion")
        return stored

    def exists(self, resource_type: str, resource_id: str) -> bool:
        return self.conn.execute(
            select(resources.c.pk).where(resources.c.res_type == resource_type,
                                         resources.c.res_id == resource_id,
                                         resources.c.deleted.is_(False))
        ).first() is not None

    def history(self, resource_type: str | None = None, resource_id: str | None = None, *,
                since: datetime | None = None, count: int = 50, offset: int = 0,
                excluded_types: frozenset[str] = frozenset()) -> tuple[int, list[Stored]]:
        conditions = []
        if resource_type:
            conditions.append(resource_versions.c.res_type == resource_type)
        elif excluded_types:
            conditions.append(resource_versions.c.res_type.not_in(sorted(excluded_types)))
        if resource_id:
            conditions.append(resource_versions.c.res_id == resource_id)
        if since:
            conditions.append(resource_versions.c.last_updated >= since)
        where = and_(*conditions) if conditions else True
        total = self.conn.execute(
            select(func.count()).select_from(resource_versions).where(where)).scalar_one()
        rows = self.conn.execute(
            select(resource_versions)
            .where(where)
            .order_by(resource_versions.c.last_updated.desc(), resource_versions.c.res_pk.desc(),
                      resource_versions.c.version.desc())
            .limit(count).offset(offset)
        ).all()
        return total, [version_from_row(r) for r in rows]

    # -- writes --------------------------------------------------------------------------

    def create(self, resource_type: str, resource: dict[str, Any],
               resource_id: str | None = None) -> Stored:
        resource_id = resource_id or new_id()
        event = WriteEvent("POST", resource_type, resource_id, resource, None)
        return self._write(event)

    def update(self, resource_type: str, resource_id: str, resource: dict[str, Any], *,
               if_match: int | None = None) -> tuple[Stored, bool]:
        """Update (or create with a client-chosen id). Returns (stored, created)."""
        previous = self.find(resource_type, resource_id, lock=True)
        if if_match is not None:
            current = previous.version if previous and not previous.deleted else None
            if current != if_match:
                raise PreconditionFailed(
                    f"If-Match version {if_match} does not match the current version "
                    f"{current if current is not None else '(none)'} of "
                    f"{resource_type}/{resource_id}")
        created = previous is None or previous.deleted
        event = WriteEvent("PUT", resource_type, resource_id, resource, previous)
        if previous is not None and not previous.deleted and _same_content(previous, resource):
            # No-op update: no new version, like HAPI; but a caller without the right to
            # write must still be refused, so the access check sees it.
            for interceptor in self.interceptors:
                interceptor.before_noop_write(self, event)
            return previous, False
        return self._write(event), created

    def delete(self, resource_type: str, resource_id: str) -> Stored | None:
        """Soft delete; returns the deletion version, or None when nothing was there."""
        previous = self.find(resource_type, resource_id, lock=True)
        if previous is None or previous.deleted:
            return None
        return self._write(WriteEvent("DELETE", resource_type, resource_id, None, previous))

    def _write(self, event: WriteEvent) -> Stored:
        now = utc_now()
        previous = event.previous
        version = previous.version + 1 if previous else 1
        if event.resource is not None:
            event.resource = _with_server_meta(event, version, now)
        for interceptor in self.interceptors:
            interceptor.before_write(self, event)
        content = orjson.dumps(event.resource).decode() if event.resource is not None else None
        deleted = event.resource is None
        values = {"version": version, "last_updated": now, "deleted": deleted,
                  "content": content}
        try:
            with self.conn.begin_nested():
                if previous is None:
                    pk = self.conn.execute(
                        insert(resources).values(res_type=event.resource_type,
                                                 res_id=event.resource_id, **values)
                        .returning(resources.c.pk)).scalar_one()
                else:
                    pk = previous.pk
                    self.conn.execute(update(resources).where(resources.c.pk == pk)
                                      .values(**values))
                self.conn.execute(insert(resource_versions).values(
                    res_pk=pk, res_type=event.resource_type, res_id=event.resource_id,
                    method=event.method, author=self.author, **values))
        except IntegrityError as exc:
            raise Conflict(f"{event.resource_type}/{event.resource_id} was changed by a "
                           "concurrent request; retry") from exc
        indexer.clear(self.conn, pk)
        if event.resource is not None:
            indexer.write(self.conn, pk, indexer.index_rows(
                event.resource_type, event.resource,
                default_tz=self.settings.default_timezone,
                local_base=self.settings.fhir_base_url))
        event.stored = Stored(pk, event.resource_type, event.resource_id, version, now,
                              deleted, content)
        for interceptor in self.interceptors:
            interceptor.after_write(self, event)
        return event.stored


def _with_server_meta(event: WriteEvent, version: int, now: datetime) -> dict[str, Any]:
    """The resource as stored: our id, versionId and lastUpdated, client meta kept."""
    assert event.resource is not None
    given = event.resource.get("meta") or {}
    if not isinstance(given, dict):
        where = f"{event.resource_type}.meta"
        raise Unprocessable(f"{where} must be an object", expression=[where])
    meta = {k: v for k, v in given.items() if k not in {"versionId", "lastUpdated"}}
    meta = {"versionId": str(version), "lastUpdated": format_instant(now), **meta}
    rest = {k: v for k, v in event.resource.items() if k not in {"resourceType", "id", "meta"}}
    return {"resourceType": event.resource_type, "id": event.resource_id, "meta": meta, **rest}


def _same_content(previous: Stored, resource: dict[str, Any]) -> bool:
    old = previous.as_dict()
    strip = {"meta"}
    old_meta = {k: v for k, v in (old.get("meta") or {}).items()
                if k not in {"versionId", "lastUpdated"}}
    new_meta = {k: v for k, v in (resource.get("meta") or {}).items()
                if k not in {"versionId", "lastUpdated"}}
    body_old = {k: v for k, v in old.items() if k not in strip}
    body_new = {k: v for k, v in resource.items() if k not in strip}
    body_new.setdefault("resourceType", old.get("resourceType"))
    body_new.setdefault("id", old.get("id"))
    return old_meta == new_meta and body_old == body_new


def stored_from_row(row: Any) -> Stored:
    return Stored(row.pk, row.res_type, row.res_id, row.version, row.last_updated,
                  row.deleted, row.content)


def version_from_row(row: Any) -> Stored:
    return Stored(row.res_pk, row.res_type, row.res_id, row.version, row.last_updated,
                  row.deleted, row.content, row.method, row.author)
