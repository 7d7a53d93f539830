"""The hook points of a unit of work: what interceptors may see and change.

An interceptor subclasses `Interceptor` and overrides the hooks it needs (every hook is a
no-op by default); the application lists its interceptors once (app/__init__.py) and the
repository and the interactions fire the hooks, so REST calls, Bundle entries and
conditional interactions all go through the same points:

| hook                   | event             | fired                                               |
|------------------------|-------------------|-----------------------------------------------------|
| `before_write`         | `WriteEvent`      | a version is about to be stored (may raise, change) |
| `after_write`          | `WriteEvent`      | it is stored, same transaction (projections, outbox)|
| `before_noop_write`    | `WriteEvent`      | an update identical to the stored version (no write)|
| `before_commit`        | (the repository)  | every write of the unit of work is done (may raise, |
|                        |                   | write: consequences that span a Bundle's entries)   |
| `conditional_criteria` | `ConditionalEvent`| a conditional write: extra criteria to match on     |
| `assigns_ids`          | `ConditionalEvent`| may the body's id be ignored (the server decides)?  |
| `before_read`          | `ReadEvent`       | a resource is loaded, not yet shown (may raise)     |
| `after_read`           | `ReadEvent`       | it is shown (disclosure audit)                      |
| `before_search`        | `SearchEvent`     | a search is parsed from `params` (may narrow them)  |
| `after_search`         | `SearchEvent`     | its page is known (may drop included resources)     |
| `before_history`       | `HistoryEvent`    | a history is asked for (may raise)                  |

Batch-level work, for what is cheaper done once for all the writes of a unit (a Bundle of a
thousand Slots) than once per write — the per-resource hooks above still fire for each:

| repository call        | what it does                                                    |
|------------------------|-----------------------------------------------------------------|
| `repo.defer(key, task)`| run `task` once, after every `before_commit`, before the commit;|
|                        | register it from `after_write` (an entry that fails before      |
|                        | writing must leave nothing behind); its writes defer in turn    |
| `repo.defer_batch(key, | the same, `task` getting every `item` collected under `key`     |
| item, task)`           | since it last ran (the writes of a Bundle, for one statement)   |
| `repo.stage_insert`,   | rows of a projection, written with the unit's next flush (one   |
| `repo.stage_delete`    | statement per table); deletes run before inserts                |
| `repo.closing`         | True while `finish()` runs the deferred work for the last time  |
|                        | (a bulk load's `checkpoint()` runs it midway, closing False)    |
| `repo.conn`            | the connection, every staged row written first: reads see all   |
| `repo.connection_for(  | the connection for a read of these tables only: flushes only if |
| *tables)`              | rows of them are staged (else the flush waits: one round trip)  |

A version is *staged* when `after_write` fires: its rows reach the database with the next
flush, which anything that runs SQL through `repo.conn` triggers; `event.stored.pk` is
already its key. On PostgreSQL a flush is one pipelined round trip (COPY for many rows), so
reads done before the unit stages anything, or through `connection_for`, save round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.storage.repository import Repository, Stored

Resource = dict[str, Any]


@dataclass
class WriteEvent:
    """A create, update or delete of one resource."""

    method: str  # POST | PUT | DELETE
    resource_type: str
    resource_id: str
    resource: Resource | None  # None for a delete
    previous: Stored | None
    stored: Stored | None = None
    # Set when the server itself makes this write inside a client's unit of work, as the
    # consequence of a write the client was allowed (e.g. a booking marks its Slot busy):
    # why, for the version's author; access checks do not ask for the caller's scopes.
    server_made: str | None = None
    # What an interceptor worked out in one hook and reads again in a later one for this
    # write (e.g. the references validation found before, checked after): keyed by names
    # each interceptor owns.
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConditionalEvent:
    """The body of a conditional create or update, before its criteria are matched."""

    resource_type: str
    body: Resource


@dataclass(frozen=True)
class ReadEvent:
    """A read or vread: the version about to be shown."""

    resource_type: str
    stored: Stored

    @property
    def resource(self) -> Resource:
        return self.stored.as_dict()


@dataclass
class SearchEvent:
    """A search: its criteria before it runs, its page afterwards. Interceptors may add
    criteria (`params`) or drop included resources (`included`), never matches."""

    resource_type: str
    params: list[tuple[str, str]]
    matches: list[Stored] = field(default_factory=list)
    included: list[Stored] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryEvent:
    resource_type: str | None  # None: the whole system
    resource_id: str | None


class Interceptor:
    """Base of every interceptor: each hook does nothing unless overridden."""

    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        return None

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        return None

    def before_noop_write(self, repo: Repository, event: WriteEvent) -> None:
        return None

    def before_commit(self, repo: Repository) -> None:
        return None

    def conditional_criteria(self, event: ConditionalEvent) -> list[tuple[str, str]]:
        return []

    def assigns_ids(self, event: ConditionalEvent) -> bool:
        return False

    def before_read(self, repo: Repository, event: ReadEvent) -> None:
        return None

    def after_read(self, repo: Repository, event: ReadEvent) -> None:
        return None

    def before_search(self, repo: Repository, event: SearchEvent) -> None:
        return None

    def after_search(self, repo: Repository, event: SearchEvent) -> None:
        return None

    def before_history(self, repo: Repository, event: HistoryEvent) -> None:
        return None
