"""One booking rule for every way of writing an Appointment (REST and conditional writes,
batch and transaction Bundles, the web pages, the command line): a slot is held by at most
one live appointment, and its status follows that appointment (app/scheduling/holds.py).

As each write of a unit of work is stored, the interceptor notes which slots appointments
took or gave back and which slots the client wrote itself. Once every write is done
(`before_commit`: a Bundle's entries run in any order, e.g. the Appointment before the Slot
it books, or the Slot's own change, with its If-Match, after the Appointment) it settles each
of those slots, locked in id order so that concurrent writers take turns and never deadlock:

- taken while another live appointment holds it, or while it is `busy-unavailable` or
  `entered-in-error` → 409 Conflict naming the slot, and the whole unit rolls back;
- held by an appointment written in this unit → the slot's status follows it (`busy`,
  `busy-tentative`), written by the server on the caller's behalf (`WriteEvent.server_made`);
- written `free` by the client while an appointment it did not touch holds it → 409: a slot
  is freed by cancelling, moving or deleting its appointment, so SAS never offers it twice;
- given back and held by nobody → `free` again, unless the client wrote the slot itself in
  this unit (its decision wins) or the agenda closed it meanwhile (`busy-unavailable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.outcome import Conflict
from app.scheduling.holds import HELD, UNBOOKABLE, held_slots, slot_status
from app.search.api import find, one_of
from app.search.sql import SqlContext
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import chunks
from app.storage.repository import Repository, Stored

UNIT_KEY = "scheduling:slot-changes"


@dataclass
class SlotChanges:
    """What the writes of one unit of work did to slots."""

    appointments: set[str] = field(default_factory=set)  # appointments written
    held: set[str] = field(default_factory=set)  # slots they hold now
    taken: dict[str, dict[str, str]] = field(default_factory=dict)  # slot → {appointment: where}
    released: dict[str, str] = field(default_factory=dict)  # slot → the version that let it go
    written: set[str] = field(default_factory=set)  # slots the client wrote itself
    freed: set[str] = field(default_factory=set)  # … as `free`, over an existing slot

    def slots(self) -> list[str]:
        return sorted({*self.held, *self.taken, *self.released, *self.freed})


def _changes(repo: Repository) -> SlotChanges:
    return repo.memo(UNIT_KEY, SlotChanges)


class SlotBooking(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type == "Appointment":
            self._appointment(repo, event)
        elif event.resource_type == "Slot" and event.server_made is None:
            changes = _changes(repo)
            changes.written.add(event.resource_id)
            if (event.resource or {}).get("status") == "free" and event.previous is not None:
                changes.freed.add(event.resource_id)

    @staticmethod
    def _appointment(repo: Repository, event: WriteEvent) -> None:
        assert event.stored is not None
        base = repo.settings.fhir_base_url
        previous = event.previous.as_dict() if event.previous else None
        before, after = held_slots(previous, base), held_slots(event.resource, base)
        changes = _changes(repo)
        changes.appointments.add(event.resource_id)
        changes.held.update(after)
        for slot_id, index in after.items():
            if slot_id not in before:
                changes.taken.setdefault(slot_id, {})[event.resource_id] = (
                    f"Appointment.slot[{index}]")
        version = f"Appointment/{event.resource_id}/_history/{event.stored.version}"
        for slot_id in before.keys() - after.keys():
            changes.released[slot_id] = version

    def before_commit(self, repo: Repository) -> None:
        changes = _changes(repo)
        slots = changes.slots()
        # The row locks (taken in id order, one statement) make a concurrent booking of
        # these slots wait for our commit, and then see our appointments among the holders.
        repo.prefetch(("Slot", slot_id) for slot_id in slots)
        holders = _holders(repo, slots)
        for slot_id in slots:
            _settle(repo, slot_id, changes, holders.get(slot_id, []))


def _holders(repo: Repository, slot_ids: list[str]) -> dict[str, list[Stored]]:
    """The live appointments holding each of these slots (one query per 500 slots: a
    Bundle of a thousand Slots is settled in a few statements). The query names the slots
    only; `held_slots` keeps the appointments whose status holds them. (With the status in
    the query too, PostgreSQL may start from it — every booked appointment — when its
    statistics of the index lag behind the appointments written since: 45 ms for 500
    slots instead of 5.)"""
    context = SqlContext(repo.settings.default_timezone, repo.settings.fhir_base_url)
    found: dict[str, list[Stored]] = {}
    for chunk in chunks(slot_ids):
        for appointment in find(repo.conn, "Appointment", [("slot", one_of(chunk, "Slot/"))],
                                context=context):
            for slot_id in held_slots(appointment.as_dict(), repo.settings.fhir_base_url):
                found.setdefault(slot_id, []).append(appointment)
    return found


def _settle(repo: Repository, slot_id: str, changes: SlotChanges,
            holders: list[Stored]) -> None:
    slot = repo.find("Slot", slot_id, lock=True)
    if slot is None or slot.deleted:
        return  # the reference checks answer for a slot that is not there
    resource = slot.as_dict()
    status = resource.get("status")
    _refuse_conflicts(slot_id, status, holders, changes)
    if len(holders) == 1 and holders[0].resource_id in changes.appointments:
        holder = holders[0].as_dict()
        wanted = slot_status(holder)
        chosen = slot_id in changes.written and status in HELD  # the client's own choice
        if status != wanted and status not in UNBOOKABLE and not chosen:
            _write(repo, resource, wanted, holders[0])
    elif not holders and slot_id in changes.released and slot_id not in changes.written \
            and status in HELD:
        _write(repo, resource, "free", changes.released[slot_id])


def _refuse_conflicts(slot_id: str, status: str | None, holders: list[Stored],
                      changes: SlotChanges) -> None:
    takers = changes.taken.get(slot_id, {})
    new = [h.resource_id for h in holders if h.resource_id in takers]
    old = [h.resource_id for h in holders if h.resource_id not in takers]
    if new:
        where = [takers[new[0]]]
        if old:
            raise Conflict(f"Slot/{slot_id} is already taken by another appointment; "
                           f"Appointment/{new[0]} cannot book it, nothing was written",
                           expression=where)
        if len(new) > 1:
            raise Conflict(f"Slot/{slot_id} is booked by several appointments of this "
                           f"request ({', '.join('Appointment/' + n for n in new)}); "
                           "nothing was written", expression=where)
        if status in UNBOOKABLE:
            raise Conflict(f"Slot/{slot_id} is {status}: Appointment/{new[0]} cannot book "
                           "it, nothing was written", expression=where)
    elif old and slot_id in changes.freed and status == "free":
        raise Conflict(f"Slot/{slot_id} is held by Appointment/{old[0]}: cancel, move or "
                       "delete that appointment to free the slot; nothing was written",
                       expression=["Slot.status"])


def _write(repo: Repository, slot: dict[str, object], status: str,
           cause: Stored | str) -> None:
    if isinstance(cause, Stored):
        cause = f"Appointment/{cause.resource_id}/_history/{cause.version}"
    repo.update("Slot", str(slot["id"]), {**slot, "status": status},
                server_made=f"fhir-agenda booking rule ({cause})")
