"""The exact SAS search request (INT_R01) and the request sets the benchmark replays."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg

from app.identifiers import IDNPS_SYSTEM, idnps

TZ = ZoneInfo("Europe/Paris")
WINDOW = timedelta(hours=72)
ACCEPT = "application/json+fhir"


@dataclass(frozen=True)
class SasRequest:
    identifiers: tuple[str, ...]  # prefixed IDNPS
    low: datetime  # aware, Europe/Paris
    high: datetime

    @property
    def path(self) -> str:
        """`/fhir/Slot?…` with `+` (offsets) and `|` percent-encoded, as SAS sends it."""
        ids = ",".join(f"{IDNPS_SYSTEM}|{value}" for value in self.identifiers)
        params = [
            ("_include", "Slot:schedule"),
            ("_include:iterate", "Schedule:actor"),
            ("start", "ge" + self.low.isoformat(timespec="seconds")),
            ("start", "le" + self.high.isoformat(timespec="seconds")),
            ("schedule.actor:Practitioner.identifier", ids),
            ("status", "free"),
        ]
        return "/fhir/Slot?" + "&".join(f"{quote(k, safe=':')}={quote(v, safe=':,')}"
                                        for k, v in params)


def window(start: date, days: int, rng: random.Random) -> tuple[datetime, datetime]:
    """A 72 h window starting on the hour (07:00–19:00, Paris) of a day of the dataset."""
    day = start + timedelta(days=rng.randrange(max(1, days - 3)))
    low = datetime(day.year, day.month, day.day, rng.randrange(7, 20), tzinfo=TZ)
    high = (low.astimezone(ZoneInfo("UTC")) + WINDOW).astimezone(TZ)
    return low, high


def request_set(identifiers: list[str], per_request: int, count: int, start: date, days: int,
                seed: int) -> list[SasRequest]:
    rng = random.Random(f"{seed}-{per_request}")
    found = []
    for _ in range(count):
        low, high = window(start, days, rng)
        found.append(SasRequest(tuple(rng.sample(identifiers, per_request)), low, high))
    return found


def practitioner_identifiers(conn: psycopg.Connection) -> list[str]:
    """The prefixed IDNPS of every active Practitioner, sorted (stored forms vary)."""
    rows = conn.execute(
        "SELECT t.res_pk, t.code FROM search_token t JOIN resources r ON r.pk = t.res_pk"
        " WHERE t.res_type = 'Practitioner' AND t.param = 'identifier' AND t.system = %s"
        "   AND NOT r.deleted AND r.content NOT LIKE '%%\"active\":false%%'",
        [IDNPS_SYSTEM]).fetchall()
    by_practitioner: dict[int, str] = {}
    for pk, code in rows:
        by_practitioner[pk] = idnps(code)
    return sorted(set(by_practitioner.values()))
