"""Slot kinds and their row templates, derived from the application's own code.

A kind is (variant, busy, specialty). For each kind the application's functions run on two
prototype Slots (a winter and a summer one, different ids): what differs between the two
must be exactly the ids and times that the SQL generator substitutes; anything else makes
`build_templates` fail, so the generator cannot silently drift from the application.

The SQL side (bench/generate.py) renders templates with the same rules as `render` below:
  content  = template split at its markers ({{I}} slot id, {{S}} schedule id, {{C}} CPTS
             service id, {{B}}/{{E}} start/end as `YYYY-MM-DDTHH:MM:SS+HH:MM`, Paris time),
             glued back with the values (SQL: one concat() per row)
  fragment = the same, times as `YYYY-MM-DDTHH:MM:SS.000+HH:MM`
  index rows = constant rows per kind + one `schedule` reference row + one `start` date row
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.demo import load_slot_plan
from app.sas.slot_projection import projection_row
from app.storage.indexer import index_rows
from app.storage.repository import WriteEvent, _with_server_meta
from bench import catalog
from bench.world import ACT_DISPLAY, CATEGORIE_ETABLISSEMENT_SYSTEM, specialty_concept

Resource = dict[str, Any]
TZ = "Europe/Paris"
UNAVAILABLE = "unavailable"
MARKERS = {"slot": "{{I}}", "schedule": "{{S}}", "cpts": "{{C}}", "start": "{{B}}",
           "end": "{{E}}"}
SLOT_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
APPOINTMENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
SERVICE_TYPE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
BOOKING_URL = "https://rdv.agenda-exemple.fr/agenda/{schedule}?creneau={slot}"
# Columns of each index table after res_pk, in table order.
INDEX_COLUMNS = {
    "token": ("res_type", "param", "system", "code", "text"),
    "string": ("res_type", "param", "value", "exact"),
    "date": ("res_type", "param", "low", "high"),
    "reference": ("res_type", "param", "target_type", "target_id", "url"),
}
SECOND = timedelta(seconds=1) - timedelta(microseconds=1)


class GeneratorDrift(RuntimeError):
    """The application stores Slots differently from what the generator's templates assume."""


VARIANTS: list[str] = sorted({v for mix in catalog.SLOT_MIXES.values() for v in mix})
SPECIALTIES: list[tuple[str | None, str | None]] = [
    s for key in catalog.SPECIALTIES for s in catalog.SPECIALTIES[key]]
PROFILES: list[str] = list(catalog.SLOT_MIXES)


def kind_id(variant: int, busy: int, specialty: int) -> int:
    return (variant * 2 + busy) * len(SPECIALTIES) + specialty


def mix_table() -> list[int]:
    """Variant index for (profile * 100 + draw), draw in 0..99 (the SQL array, 1-based)."""
    table: list[int] = []
    for profile in PROFILES:
        mix = catalog.SLOT_MIXES[profile]
        if sum(mix.values()) != 100:
            raise ValueError(f"slot mix {profile} does not total 100")
        for variant, weight in mix.items():
            table.extend([VARIANTS.index(variant)] * weight)
    return table


@dataclass(frozen=True)
class Values:
    """What changes from one Slot to the next within a kind."""

    slot: str
    schedule: str
    cpts: str
    start: str  # resource form, with offset
    end: str

    @property
    def sas_start(self) -> str:
        return sas_form(self.start)

    @property
    def sas_end(self) -> str:
        return sas_form(self.end)

    @property
    def start_utc(self) -> datetime:
        return datetime.fromisoformat(self.start).astimezone(UTC).replace(tzinfo=None)


def sas_form(instant: str) -> str:
    """`…T08:30:00+01:00` → `…T08:30:00.000+01:00` (the SQL does the same with left/right)."""
    return instant[:19] + ".000" + instant[19:]


def slot_resource(variant: str, busy: bool, specialty: int, values: Values) -> Resource:
    """A Slot as an agenda would PUT it (before the server adds meta.versionId/lastUpdated)."""
    if variant == UNAVAILABLE:
        return {"resourceType": "Slot", "id": values.slot,
                "schedule": {"reference": f"Schedule/{values.schedule}"},
                "status": "busy-unavailable", "start": values.start, "end": values.end,
                "comment": "Indisponible"}
    plan = load_slot_plan()
    kind = plan["kinds"][variant]
    service_types: list[Resource] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code,
                     "display": ACT_DISPLAY[code]}]} for code in kind["serviceType"]]
    if "healthcareService" in kind:
        service_types.append({
            "extension": [{"url": SERVICE_TYPE_EXTENSION,
                           "valueReference": {"reference": f"HealthcareService/{values.cpts}"}}],
            "coding": [{"system": CATEGORIE_ETABLISSEMENT_SYSTEM, "code": "604"}]})
    service_types.append({"text": kind["motif"]})
    return {
        "resourceType": "Slot",
        "id": values.slot,
        "meta": {"security": [{"system": plan["visibility_systems"][code], "code": code}
                              for code in kind["security"]]},
        "serviceType": service_types,
        "specialty": [specialty_concept(SPECIALTIES[specialty])],
        "appointmentType": {"coding": [{"system": APPOINTMENT_REASON_SYSTEM,
                                        "code": kind["appointmentType"]}]},
        "schedule": {"reference": f"Schedule/{values.schedule}"},
        "status": "busy" if busy else "free",
        "start": values.start,
        "end": values.end,
        "comment": BOOKING_URL.format(schedule=values.schedule, slot=values.slot),
    }


def stored(resource_type: str, resource_id: str, resource: Resource,
           now: datetime) -> Resource:
    """The resource exactly as the repository stores it (version 1)."""
    event = WriteEvent("PUT", resource_type, resource_id, resource, None)
    return _with_server_meta(event, 1, now)


# Marker numbers in the SQL tables (bench_kind.m1…): 1 slot, 2 schedule, 3 CPTS, 4 start, 5 end.
MARKER_CODES = {MARKERS[key]: number for number, key in enumerate(
    ("slot", "schedule", "cpts", "start", "end"), start=1)}
MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKER_CODES))


def split_template(template: str) -> tuple[list[str], list[int]]:
    """(literal parts, marker numbers between them): len(parts) == len(markers) + 1."""
    return MARKER_RE.split(template), [MARKER_CODES[m] for m in MARKER_RE.findall(template)]


def render(template: str, values: Values, sas: bool = False) -> str:
    """Python twin of the SQL concat(): parts[0] + value(marker 1) + parts[1] + …."""
    start, end = (values.sas_start, values.sas_end) if sas else (values.start, values.end)
    by_code = {1: values.slot, 2: values.schedule, 3: values.cpts, 4: start, 5: end}
    parts, markers = split_template(template)
    return parts[0] + "".join(by_code[m] + part for m, part in zip(markers, parts[1:],
                                                                     strict=True))


def _template(text: str, values: Values, sas: bool = False) -> str:
    if "{{" in text:
        raise GeneratorDrift("a Slot already contains '{{': pick other template markers")
    start, end = (values.sas_start, values.sas_end) if sas else (values.start, values.end)
    for key, value in (("start", start), ("end", end), ("slot", values.slot),
                       ("schedule", values.schedule), ("cpts", values.cpts)):
        text = text.replace(value, MARKERS[key])
    return text


Row = tuple[Any, ...]


def variable_rows(values: Values, shared: bool = False) -> dict[str, list[Row]]:
    """The index rows that change per Slot (what bench/generate.py generates per row);
    `shared`: the kind names its département's CPTS offer (service-type-reference)."""
    low = values.start_utc
    references: list[Row] = [("Slot", "schedule", "Schedule", values.schedule, None)]
    if shared:
        references.append(("Slot", "service-type-reference", "HealthcareService",
                           values.cpts, None))
    return {"reference": references, "date": [("Slot", "start", low, low + SECOND)]}


def _index_tuples(resource: Resource, local_base: str) -> dict[str, Counter[Row]]:
    rows = index_rows("Slot", resource, default_tz=TZ, local_base=local_base)
    return {table: Counter(tuple(row[c] for c in INDEX_COLUMNS[table]) for row in found)
            for table, found in rows.items()}


@dataclass
class KindTemplate:
    kind: int
    content: str
    fragment: str | None  # None: not in sas_slot (busy, or not visible to SAS)
    constant_rows: dict[str, list[Row]] = field(default_factory=dict)
    cpts: bool = False  # sas_slot.cpts is `["<CPTS service id>"]` (shared with the CPTS)
    shared: bool = False  # names the CPTS offer: a service-type-reference index row


PROTOTYPES = (
    Values("zzslotazz", "zzschedazz", "zzcptsazz", "2001-01-08T09:10:00+01:00",
           "2001-01-08T09:30:00+01:00"),
    Values("zzslotbzz", "zzschedbzz", "zzcptsbzz", "2002-07-09T14:20:00+02:00",
           "2002-07-09T14:50:00+02:00"),
)


def build_kind(variant: int, busy: int, specialty: int, now: datetime,
               local_base: str) -> KindTemplate:
    name = VARIANTS[variant]
    a, b = PROTOTYPES
    resource_a = stored("Slot", a.slot, slot_resource(name, bool(busy), specialty, a), now)
    resource_b = stored("Slot", b.slot, slot_resource(name, bool(busy), specialty, b), now)
    label = f"Slot kind {name}/{'busy' if busy else 'free'}/{SPECIALTIES[specialty]}"

    content = _template(orjson.dumps(resource_a).decode(), a)
    if render(content, b) != orjson.dumps(resource_b).decode():
        raise GeneratorDrift(f"{label}: stored content does not follow the template")

    projected_a = projection_row(resource_a, 1, TZ, local_base)
    projected_b = projection_row(resource_b, 2, TZ, local_base)
    fragment, cpts = None, False
    if (projected_a is None) != (projected_b is None):
        raise GeneratorDrift(f"{label}: SAS visibility depends on ids or times")
    if projected_a is not None and projected_b is not None:
        for values, projected in ((a, projected_a), (b, projected_b)):
            if (projected["slot_id"], projected["schedule_id"], projected["start"]) != (
                    values.slot, values.schedule, values.start_utc):
                raise GeneratorDrift(f"{label}: sas_slot keys are not (id, schedule, start)")
        fragment = _template(projected_a["fragment"], a, sas=True)
        if render(fragment, b, sas=True) != projected_b["fragment"]:
            raise GeneratorDrift(f"{label}: sas_slot fragment does not follow the template")
        shared = [projected["cpts"] == orjson.dumps([values.cpts]).decode()
                  for values, projected in ((a, projected_a), (b, projected_b))]
        if shared[0] != shared[1] or (not shared[0] and (
                projected_a["cpts"], projected_b["cpts"]) != (None, None)):
            raise GeneratorDrift(f"{label}: sas_slot.cpts is neither empty nor [CPTS id]")
        cpts = shared[0]

    rows_a, rows_b = _index_tuples(resource_a, local_base), _index_tuples(resource_b, local_base)
    shared = "healthcareService" in load_slot_plan()["kinds"].get(name, {})
    constant: dict[str, list[Row]] = {}
    for table in INDEX_COLUMNS:
        common = rows_a[table] & rows_b[table]
        for values, rows in ((a, rows_a[table]), (b, rows_b[table])):
            expected = Counter(variable_rows(values, shared).get(table, []))
            if rows - common != expected:
                raise GeneratorDrift(f"{label}: {table} index rows {sorted(rows - common)} "
                                     f"!= expected per-slot rows {sorted(expected)}")
        constant[table] = sorted(common.elements(), key=repr)
    return KindTemplate(kind_id(variant, busy, specialty), content, fragment, constant, cpts,
                        shared)


def build_templates(now: datetime, local_base: str) -> list[KindTemplate]:
    return [build_kind(v, b, s, now, local_base) for v in range(len(VARIANTS))
            for b in (0, 1) for s in range(len(SPECIALTIES))]
