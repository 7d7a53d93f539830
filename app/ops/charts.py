"""Line charts as inline SVG, drawn on the server: no script, no library, nothing fetched
from elsewhere (the page's Content-Security-Policy allows none)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Line:
    label: str
    css: str  # class of the stroke (app/ops/static/supervision.css)
    points: Sequence[tuple[datetime, float | None]]  # naive UTC; None = no measure


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    log: bool = False

    def y(self, value: float) -> float:
        value = min(max(value, self.low), self.high)
        if self.log:
            share = (math.log10(value) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low))
        else:
            share = (value - self.low) / ((self.high - self.low) or 1.0)
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - share)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            return [10.0 ** e for e in range(first, last + 1) if self.low <= 10.0 ** e <= self.high]
        step = _nice_step((self.high - self.low) / 4)
        count = int((self.high - self.low) / step)
        return [self.low + step * i for i in range(count + 1)]


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def linear_scale(lines: Sequence[Line], floor: float = 1.0) -> Scale:
    """From 0 to a round value above the highest point (at least `floor`)."""
    values = [v for line in lines for _, v in line.points if v is not None]
    top = max([floor, *values])
    step = _nice_step(top / 4)
    return Scale(0.0, step * math.ceil(top / step))


def _x(moment: datetime, start: datetime, end: datetime) -> float:
    share = (moment - start) / ((end - start) or timedelta(seconds=1))
    return LEFT + (WIDTH - LEFT - RIGHT) * share


def _tick_label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"
    return f"{value:g}{unit}"


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive measured points: a gap (no measure) breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def chart(title: str, lines: Sequence[Line], start: datetime, end: datetime, scale: Scale,
          *, unit: str = "", thresholds: Sequence[Threshold] = ()) -> Markup:
    """An accessible SVG line chart over [start, end] (naive UTC, labelled Paris time)."""
    parts = [f'<svg class="graphe" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<rect class="fond" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
             f'height="{HEIGHT - TOP - BOTTOM}"/>']
    for tick in scale.ticks():
        y = scale.y(tick)
        parts.append(f'<line class="grille" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="axe" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(_tick_label(tick, unit))}</text>')
    moment = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while moment <= end:
        local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(PARIS)
        if local.hour % 3 == 0:
            x = _x(moment, start, end)
            parts.append(f'<line class="grille" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                         f'y2="{HEIGHT - BOTTOM}"/><text class="axe" x="{x:.1f}" '
                         f'y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                         f"{local:%H:%M}</text>")
        moment += timedelta(hours=1)
    for threshold in thresholds:
        y = scale.y(threshold.value)
        parts.append(f'<line class="seuil" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"><title>{escape(threshold.label)}</title></line>'
                     f'<text class="seuil-texte" x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" '
                     f'text-anchor="end">{escape(threshold.label)}</text>')
    for line in lines:
        points = [(_x(at, start, end), None if value is None else scale.y(value))
                  for at, value in line.points]
        for run in _segments(points):
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle class="{line.css}" cx="{x:.1f}" cy="{y:.1f}" r="2">'
                             f"<title>{escape(line.label)}</title></circle>")
                continue
            coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(f'<polyline class="{line.css}" points="{coordinates}">'
                         f"<title>{escape(line.label)}</title></polyline>")
    parts.append("</svg>")
    return Markup("".join(parts))
