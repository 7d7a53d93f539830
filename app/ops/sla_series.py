"""The SLA page's figures, from the minute snapshots (app/ops/samples.py): per time bin,
SAS search latency percentiles (as Prometheus' histogram_quantile computes them), SAS and
API throughput, 5xx error rates, notification backlog and parked messages; and the day's
summary (share of SAS searches answered within 1 s and 7 s)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.ops.samples import minute_increases

INF = "+Inf"
QUANTILES = (0.5, 0.95, 0.99)


def quantile(q: float, cumulative: Mapping[str, float]) -> float | None:
    """The q-quantile of a histogram given as cumulative counts per upper bound `le`,
    interpolated linearly inside its bucket; None without observations. Past the last
    finite bound the answer is that bound (the histogram cannot say more)."""
    bounds = sorted(((math.inf if le == INF else float(le)), count)
                    for le, count in cumulative.items())
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


@dataclass
class Bin:
    start: datetime
    minutes: int = 0  # minutes with a measure (at least one host sampled)
    counters: dict[str, float] = field(default_factory=dict)
    pending: float | None = None
    parked: float | None = None
    oldest_age: float | None = None

    def add(self, increases: Mapping[str, float]) -> None:
        for key, value in increases.items():
            self.counters[key] = self.counters.get(key, 0.0) + value

    def gauges(self, outbox: Mapping[str, float]) -> None:
        # Every host reads the same outbox: the largest reading of the bin, not a sum.
        self.pending = max(self.pending or 0.0, outbox.get("pending", 0.0))
        self.parked = max(self.parked or 0.0, outbox.get("parked", 0.0))
        self.oldest_age = max(self.oldest_age or 0.0, outbox.get("oldest_age", 0.0))

    def latency(self) -> dict[str, float]:
        return {key.removeprefix("latency/"): value for key, value in self.counters.items()
                if key.startswith("latency/")}

    def percentile(self, q: float) -> float | None:
        return quantile(q, self.latency())

    @property
    def sas_searches(self) -> float:
        return self.latency().get(INF, 0.0)

    def requests(self, key: str = "all") -> tuple[float, float]:
        """(answered, 5xx) for the FHIR API ("all") or the SAS searches ("sas")."""
        prefix = "requests/all/" if key == "all" else "requests/"
        total = errors = 0.0
        for name, value in self.counters.items():
            if not name.startswith(prefix) or (key == "sas" and name.startswith(
                    "requests/all/")):
                continue
            total += value
            if name.endswith("/5xx"):
                errors += value
        return total, errors

    def per_minute(self, value: float) -> float | None:
        return value / self.minutes if self.minutes else None

    def error_rate(self, key: str) -> float | None:
        total, errors = self.requests(key)
        return 100.0 * errors / total if total else (0.0 if self.minutes else None)


@dataclass
class Summary:
    searches: float
    within_1s: float | None  # percent of SAS searches
    within_7s: float | None
    p95: float | None
    sas_error_rate: float | None
    pending: float | None
    parked: float | None
    oldest_age: float | None


def bins(by_host: Mapping[str, list[tuple[datetime, dict[str, Any]]]], end: datetime,
         hours: int = 24, bin_minutes: int = 5) -> list[Bin]:
    """The bins of the `hours` before `end` (naive UTC), oldest first."""
    span = timedelta(minutes=bin_minutes)
    count = hours * 60 // bin_minutes
    first = _floor(end, bin_minutes) - span * (count - 1)
    out = [Bin(first + span * i) for i in range(count)]

    def at(moment: datetime) -> Bin | None:
        index = int((moment - first) / span)
        return out[index] if 0 <= index < count else None

    minutes_seen: dict[int, set[datetime]] = {}
    for snapshots in by_host.values():
        for taken_at, increases in minute_increases(snapshots).items():
            target = at(taken_at)
            if target is not None:
                target.add(increases)
                minutes_seen.setdefault(id(target), set()).add(taken_at)
        for taken_at, sample in snapshots:
            target = at(taken_at)
            if target is not None and "outbox" in sample:
                target.gauges(sample["outbox"])
    for item in out:
        item.minutes = len(minutes_seen.get(id(item), ()))
    return out


def _floor(moment: datetime, minutes: int) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % minutes)


def summary(day: list[Bin]) -> Summary:
    total = Bin(day[0].start if day else datetime.min)
    for item in day:
        total.add(item.counters)
        total.minutes += item.minutes
    latency = total.latency()
    searches = latency.get(INF, 0.0)
    latest = next((item for item in reversed(day) if item.pending is not None), None)
    return Summary(
        searches=searches,
        within_1s=100.0 * latency.get("1.0", 0.0) / searches if searches else None,
        within_7s=100.0 * latency.get("7.0", 0.0) / searches if searches else None,
        p95=total.percentile(0.95),
        sas_error_rate=total.error_rate("sas"),
        pending=latest.pending if latest else None,
        parked=latest.parked if latest else None,
        oldest_age=latest.oldest_age if latest else None)
