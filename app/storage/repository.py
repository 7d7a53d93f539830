"""The resource repository: versioned create/update/delete/read and history.

Every method runs inside the caller's transaction (one `Connection`), so that a single
interaction, a whole transaction Bundle, and anything hooked in through interceptors
(validation, audit, notifications) commit or roll back together.

A Repository is one unit of work, and writes like one: each version stored is *staged*
(app/storage/staging.py: its `resources` and `resource_versions` rows, the index rows that
changed, the projection rows interceptors stage) and reaches the database in one statement
per table when anything next runs SQL (`conn` flushes first), or when the unit finishes.
A single write and a Bundle of a thousand take the same path; the Bundle just flushes once.
Resources the unit locked or wrote are kept (`prefetch`, `find`), so a Bundle reads its
targets in one statement and never again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Table, and_, event, func, select
from sqlalchemy.exc import IntegrityError

from app.clock import format_instant, utc_now
from app.config import Settings
from app.outcome import Conflict, Gone, NotFound, PreconditionFailed, Unprocessable
from app.storage import bulk, indexer
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import among
from app.storage.schema import INDEX_TABLES, resource_versions, resources
from app.storage.staging import Staging

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
        """The content, parsed: a dict of the caller's own."""
        return orjson.loads(self.content) if self.content else {}


def new_id() -> str:
    return str(uuid.uuid4())


class Repository:
    """One unit of work: a transaction, who does it, and the interceptors it fires."""

    def __init__(self, conn: Connection, settings: Settings,
                 interceptors: Sequence[Interceptor] = (), author: str | None = None, *,
                 writable: bool = True, client_address: str | None = None,
                 search_variants: Sequence[Any] = ()) -> None:
        self._conn = conn
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
        self._memo: dict[str, Any] = {}
        self.written = 0  # versions stored by this unit so far
        self.closing = False  # finish() runs: deferred work is the unit's last
        self._staged = Staging()
        # (type, id) → the current version (None: absent), for resources this unit locked
        # or wrote: nobody else can change them before it ends.
        self._known: dict[tuple[str, str], Stored | None] = {}
        self._deferred: dict[Hashable, Callable[[], None]] = {}
        # Work a checkpoint could not conclude (see `defer_to_finish`).
        self._at_finish: dict[Hashable, Callable[[], None]] = {}
        self._free_pks: list[int] = []
        self._given_pks = 0
        self._last_pk: int | None = None
        self._listening = False

    @property
    def conn(self) -> Connection:
        """The unit's connection, with everything staged so far written: whatever runs SQL
        on it (a search, an interceptor's query) sees every write of the unit."""
        if self._staged:
            self.flush()
        return self._conn

    def connection_for(self, *tables: Table) -> Connection:
        """The unit's connection for a statement that reads only these tables: the rows
        staged for them are written first (with everything else staged), and when none
        are, the flush waits and goes with the next one, in the same round trip."""
        if self._staged.touches(tables):
            self.flush()
        return self._conn

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """A value computed once per unit of work (e.g. a caller's compartment), so that
        the entries of a Bundle share it."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]  # type: ignore[no-any-return]

    # -- reads ---------------------------------------------------------------------------

    def find(self, resource_type: str, resource_id: str, *, lock: bool = False) -> Stored | None:
        key = (resource_type, resource_id)
        if key in self._known:
            return self._known[key]
        query = select(resources).where(resources.c.res_type == resource_type,
                                        resources.c.res_id == resource_id)
        if lock:
            query = query.with_for_update()
        row = self._by_key().execute(query).first()
        found = stored_from_row(row) if row else None
        if lock:
            self._known[key] = found
        return found

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Lock and keep the current version of these resources (absent ones too) in one
        statement per type, so that the writes of a Bundle read none of them again."""
        by_type: dict[str, list[str]] = {}
        for resource_type, resource_id in keys:
            if (resource_type, resource_id) not in self._known:
                by_type.setdefault(resource_type, []).append(resource_id)
        for resource_type, ids in by_type.items():
            for chunk, wanted in among(self._conn, resources.c.res_id, set(ids)):
                for resource_id in chunk:
                    self._known[(resource_type, resource_id)] = None
                rows = self._by_key().execute(
                    select(resources).where(resources.c.res_type == resource_type, wanted)
                    .order_by(resources.c.res_id).with_for_update())
                for row in rows:
                    self._known[(resource_type, row.res_id)] = stored_from_row(row)

    def _by_key(self) -> Connection:
        """The connection for reading `resources` rows by type and id that the unit has not
        written: what it wrote is in `_known` (a checkpoint that forgets it flushes first),
        so nothing it staged can change the answer, and the flush can wait."""
        return self._conn

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
        key = (resource_type, resource_id)
        if key in self._known:
            known = self._known[key]
            return known is not None and not known.deleted
        return self._by_key().execute(
            select(resources.c.pk).where(resources.c.res_type == resource_type,
                                         resources.c.res_id == resource_id,
                                         resources.c.deleted.is_(False))
        ).first() is not None

    def existing(self, wanted: dict[str, set[str]]) -> set[tuple[str, str]]:
        """Those of these (type → ids) that name a live resource, as (type, id): one query
        per part of `among`, whatever their types (a Slot's Schedule and service together)."""
        found: set[tuple[str, str]] = set()
        unknown: dict[str, str] = {}  # id → type; an id wanted under several types: below
        again: list[tuple[str, str]] = []
        for resource_type, resource_ids in wanted.items():
            for resource_id in resource_ids:
                key = (resource_type, resource_id)
                if key in self._known:
                    known = self._known[key]
                    if known is not None and not known.deleted:
                        found.add(key)
                elif unknown.setdefault(resource_id, resource_type) != resource_type:
                    again.append(key)
        for chunk, wanted_ids in among(self._conn, resources.c.res_id, unknown):
            types = {unknown[i] for i in chunk}
            rows = self._by_key().execute(
                select(resources.c.res_type, resources.c.res_id).where(
                    resources.c.res_type.in_(sorted(types)), wanted_ids,
                    resources.c.deleted.is_(False)))
            found.update((t, i) for t, i in rows if unknown.get(i) == t)
        if again:
            by_type: dict[str, set[str]] = {}
            for resource_type, resource_id in again:
                by_type.setdefault(resource_type, set()).add(resource_id)
            found |= self.existing(by_type)
        return found

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
               if_match: int | None = None,
               server_made: str | None = None) -> tuple[Stored, bool]:
        """Update (or create with a client-chosen id). Returns (stored, created).
        `server_made`: why the server makes this write itself (see WriteEvent)."""
        previous = self.find(resource_type, resource_id, lock=True)
        if if_match is not None:
            current = previous.version if previous and not previous.deleted else None
            if current != if_match:
                raise PreconditionFailed(
                    f"If-Match version {if_match} does not match the current version "
                    f"{current if current is not None else '(none)'} of "
                    f"{resource_type}/{resource_id}")
        created = previous is None or previous.deleted
        event = WriteEvent("PUT", resource_type, resource_id, resource, previous,
                           server_made=server_made)
        if previous is not None and not previous.deleted and same_content(previous.as_dict(),
                                                                          resource):
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

    def finish(self) -> None:
        """The unit of work has written everything: the interceptors' last word before it
        commits (AppState.writing calls it), the work they deferred, then the last rows."""
        for interceptor in self.interceptors:
            interceptor.before_commit(self)
        self.closing = True
        for key, task in self._at_finish.items():
            self._deferred.setdefault(key, task)
        self._at_finish.clear()
        self._run_deferred()
        self.flush()

    def checkpoint(self) -> None:
        """Midway through a long unit (a bulk load): do the deferred work so far, write
        everything staged and forget the resources kept, so that memory stays bounded.
        Deferred tasks see `closing` False: what may still be resolved later (a reference
        to a resource further in the file) waits for the end."""
        self._run_deferred()
        self.flush()
        self._known.clear()

    def settle(self) -> None:
        """Do the work deferred so far (projections, audit; not the unit's final checks),
        so that a statement over the projections inside this unit sees its own writes."""
        self._run_deferred()

    def _run_deferred(self) -> None:
        while self._deferred:
            # Deferred work may write, and those writes defer work of their own: rounds.
            work, self._deferred = self._deferred, {}
            for task in work.values():
                task()

    def defer_to_finish(self, key: Hashable, task: Callable[[], None]) -> None:
        """Run `task` when the unit finishes: what a checkpoint's deferred task could not
        conclude yet (a reference to a resource further in a bulk load) waits for the end,
        even if nothing is written after that checkpoint."""
        self._at_finish.setdefault(key, task)

    def defer(self, key: Hashable, task: Callable[[], None]) -> None:
        """Run `task` once before the unit commits, after every `before_commit`: work an
        interceptor collects write by write (in `after_write`) and does for all of them at
        once, set-based. A task deferred again under the same key before it ran is kept
        once."""
        self._deferred.setdefault(key, task)

    def defer_batch(self, key: Hashable, item: T, task: Callable[[list[T]], None]) -> None:
        """Collect `item` under `key` and run `task` once before the unit commits, with
        everything collected since it last ran: what an interceptor notes write by write
        and handles for the whole unit at once."""
        collected: list[T] = self.memo(f"batch:{key}", list)
        collected.append(item)

        def run() -> None:
            items = collected[:]
            collected.clear()
            task(items)

        self.defer(key, run)

    def stage_insert(self, table: Table, row: dict[str, Any]) -> None:
        """Insert `row` with the unit's next flush (interceptors' projection rows)."""
        self._stage().insert(table, row)

    def stage_delete(self, table: Table, column: str, value: Any) -> None:
        """Delete the rows whose `column` is `value` with the next flush, before its inserts."""
        self._stage().delete(table, column, value)

    def flush(self) -> None:
        """Write everything staged: one statement per table."""
        if not self._staged:
            return
        staged, self._staged = self._staged, Staging()
        try:
            staged.flush(self._conn)
        except IntegrityError as exc:
            raise Conflict("A resource of this request was changed by a concurrent request; "
                           "retry") from exc

    def _stage(self) -> Staging:
        if not self._listening:
            # Rows staged must not be lost by a caller that commits without finish().
            event.listen(self._conn, "commit", self._flush_at_commit)
            self._listening = True
        return self._staged

    def _flush_at_commit(self, _conn: Connection) -> None:
        if self._deferred:
            raise RuntimeError("a unit of work with deferred work commits without finish()")
        self.flush()

    def _new_pk(self) -> int:
        if not self._free_pks:
            # A few at a time for one write, more as a Bundle goes on: one round trip each.
            count = min(1024, max(4, 2 * self._given_pks))
            self._free_pks = bulk.allocate_pks(self._conn, resources, count, self._last_pk)
            self._free_pks.reverse()
            self._given_pks += count
        pk = self._free_pks.pop()
        self._last_pk = pk
        return pk

    def _write(self, event: WriteEvent) -> Stored:
        now = utc_now()
        previous = event.previous
        version = previous.version + 1 if previous else 1
        if event.resource is not None:
            event.resource = _with_server_meta(event, version, now)
        for interceptor in self.interceptors:
            interceptor.before_write(self, event)
        key = (event.resource_type, event.resource_id)
        if key in self._staged.keys:
            self.flush()  # written twice in this unit: one staged version per flush
        content = orjson.dumps(event.resource).decode() if event.resource is not None else None
        deleted = event.resource is None
        pk = previous.pk if previous else self._new_pk()
        values = {"version": version, "last_updated": now, "deleted": deleted,
                  "content": content}
        staged = self._stage()
        staged.resource(key, {"pk": pk, **({} if previous else {
            "res_type": event.resource_type, "res_id": event.resource_id}), **values},
            new=previous is None)
        staged.insert(resource_versions, {
            "res_pk": pk, "res_type": event.resource_type, "res_id": event.resource_id,
            "method": event.method, "author": _author(self.author, event), **values})
        self._stage_index(pk, event)
        event.stored = Stored(pk, event.resource_type, event.resource_id, version, now,
                              deleted, content)
        self._known[key] = event.stored
        self.written += 1
        for interceptor in self.interceptors:
            interceptor.after_write(self, event)
        return event.stored

    def _stage_index(self, pk: int, event: WriteEvent) -> None:
        """The index rows of the new version, in the tables where they changed."""
        previous = event.previous
        live = previous is not None and not previous.deleted
        if event.resource is not None and live:
            # An update: only the tables whose indexed values changed are rewritten.
            assert previous is not None
            changed = indexer.changed_tables(event.resource_type, event.resource,
                                             previous.as_dict())
            new = self._index_rows(event.resource_type, event.resource, changed)
            for name in changed:
                self._staged.delete(INDEX_TABLES[name], "res_pk", pk)
                self._stage_rows(name, pk, new[name])
            return
        if event.resource is None:  # a deletion: the previous version's rows go
            for table in INDEX_TABLES.values():
                self._staged.delete(table, "res_pk", pk)
            return
        new = self._index_rows(event.resource_type, event.resource)  # a create: no rows yet
        for name in INDEX_TABLES:
            self._stage_rows(name, pk, new[name])

    def _stage_rows(self, name: str, pk: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._staged.insert(INDEX_TABLES[name], {**row, "res_pk": pk})

    def _index_rows(self, resource_type: str, resource: dict[str, Any] | None,
                    kinds: set[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        if resource is None:
            return {name: [] for name in INDEX_TABLES}
        return indexer.index_rows(resource_type, resource,
                                  default_tz=self.settings.default_timezone,
                                  local_base=self.settings.fhir_base_url, kinds=kinds)


def _author(author: str | None, event: WriteEvent) -> str | None:
    if event.server_made is None:
        return author
    return f"{event.server_made}, on behalf of {author or 'unknown'}"[:512]  # the column's size


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


def same_content(old: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Whether `resource` says what the stored `old` says (version and update time aside):
    an update with it would be a no-op."""
    old_meta = {k: v for k, v in (old.get("meta") or {}).items()
                if k not in {"versionId", "lastUpdated"}}
    new_meta = {k: v for k, v in (resource.get("meta") or {}).items()
                if k not in {"versionId", "lastUpdated"}}
    body_old = {k: v for k, v in old.items() if k != "meta"}
    body_new = {k: v for k, v in resource.items() if k != "meta"}
    body_new.setdefault("resourceType", old.get("resourceType"))
    body_new.setdefault("id", old.get("id"))
    return old_meta == new_meta and body_old == body_new


def stored_from_row(row: Any) -> Stored:
    return Stored(row.pk, row.res_type, row.res_id, row.version, row.last_updated,
                  row.deleted, row.content)


def version_from_row(row: Any) -> Stored:
    return Stored(row.res_pk, row.res_type, row.res_id, row.version, row.last_updated,
                  row.deleted, row.content, row.method, row.author)
