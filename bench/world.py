"""The synthetic world: practitioners, cabinets and practice places, and their FHIR resources.

Everything derives from (practitioner count, seed), so two runs build the same dataset. The
Slots are not built here (see bench/slots.py): only each place's weekly plan.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from typing import Any, TypeVar

from app.identifiers import IDENTIFIER_TYPE_SYSTEM, IDNPS_SYSTEM, IDNST_SYSTEM
from app.sas.codes import ACT_CODE_SYSTEM, SPECIALTY_SYSTEM
from bench import catalog
from bench.catalog import City, Profession

Resource = dict[str, Any]
T = TypeVar("T")

CATEGORIE_ETABLISSEMENT_SYSTEM = ("https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/"
                                  "FHIR/TRE-R66-CategorieEtablissement")
SIRENE_SYSTEM = "http://sirene.fr"
ACT_DISPLAY = {"AMB": "ambulatory", "HH": "home health", "VR": "virtual"}
SATURDAY, WEEKDAYS = 5, range(5)


class Weighted:
    """Weighted random choice with precomputed cumulative weights."""

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        self.values = [value for value, _ in items]
        self.cumulative = list(accumulate(weight for _, weight in items))

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


def luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@dataclass
class Cabinet:
    """One practice: an Organization and its Location."""

    index: int
    city: City
    street: str
    number: int
    kind: str  # finess | siret | rang (which national id it has)
    phone: str
    has_address: bool = True

    @property
    def org_id(self) -> str:
        return f"org-{self.index:06d}"

    @property
    def location_id(self) -> str:
        return f"loc-{self.index:06d}"


@dataclass
class Place:
    """One practice place of a practitioner: PractitionerRole + Schedule + weekly plan."""

    practitioner: int
    number: int
    cabinet: int
    weekday_mask: int  # bit d set: works on weekday d (0 = Monday) at this place
    slots_per_day: int
    saturday_slots: int
    slot_minutes: int
    morning_start: int  # minutes since midnight
    afternoon_start: int

    @property
    def key(self) -> str:
        return f"{self.practitioner:06d}-{self.number}"

    @property
    def role_id(self) -> str:
        return f"role-{self.key}"

    @property
    def schedule_id(self) -> str:
        return f"sched-{self.key}"

    @property
    def morning_capacity(self) -> int:
        return max(0, (12 * 60 - self.morning_start) // self.slot_minutes)


@dataclass
class Practitioner:
    index: int
    profession: Profession
    specialty: int  # index in World.specialties
    family: str
    given: str
    female: bool
    rpps: bool
    prefixed: bool  # the stored IDNPS carries its 8/0 prefix
    phone: str
    email: bool
    active: bool
    places: list[Place] = field(default_factory=list)
    pk: int = 0  # resources.pk of the Practitioner; its roles and schedules follow

    @property
    def id(self) -> str:
        return f"pra-{self.index:06d}"

    @property
    def national_number(self) -> str:
        """RPPS (11 digits, Luhn) or ADELI (9 digits) without the IDNPS prefix."""
        if self.rpps:
            base = f"10{self.index:08d}"
            return base + luhn_digit(base)
        return f"{self.index % 95 + 1:02d}{self.index:07d}"

    @property
    def idnps(self) -> str:
        return ("8" if self.rpps else "0") + self.national_number


@dataclass
class World:
    start: date
    weeks: int
    practitioners: list[Practitioner]
    cabinets: list[Cabinet]
    departments: list[str]  # one CPTS (Organization + HealthcareService) each
    specialties: list[tuple[str | None, str | None]]
    slot_pk_offset: int = 0  # Slot pks are slot_pk_offset + 1, + 2…

    # pk layout: cabinet Organizations, CPTS Organization + HealthcareService pairs,
    # Locations, then each Practitioner followed by its PractitionerRole + Schedule pairs.
    def organization_pk(self, cabinet: int) -> int:
        return 1 + cabinet

    def cpts_pk(self, department: int) -> int:
        return 1 + len(self.cabinets) + 2 * department

    def location_pk(self, cabinet: int) -> int:
        return 1 + len(self.cabinets) + 2 * len(self.departments) + cabinet

    @property
    def first_practitioner_pk(self) -> int:
        return 1 + 2 * len(self.cabinets) + 2 * len(self.departments)

    @property
    def places(self) -> Iterator[Place]:
        for practitioner in self.practitioners:
            yield from practitioner.places


def _phone(rng: random.Random, landline: bool = True) -> str:
    digits = f"{rng.randrange(1, 6) if landline else rng.choice((6, 7))}{rng.randrange(10**8):08d}"
    if rng.random() < 0.3:  # some agendas keep the national format; SAS gets +33…
        national = "0" + digits
        return " ".join(national[i:i + 2] for i in range(0, 10, 2))
    return "+33" + digits


def build_world(practitioners: int, weeks: int, start: date, seed: int = 1) -> World:
    rng = random.Random(seed)
    professions = Weighted([(p, p.weight) for p in catalog.PROFESSIONS])
    cities = Weighted([(c, c.weight) for c in catalog.CITIES])
    cabinet_sizes = Weighted(catalog.CABINET_SIZES)
    place_counts = Weighted(catalog.PLACES)
    daily = Weighted(catalog.DAILY_SLOTS)
    cabinet_kinds = Weighted([("finess", 25), ("siret", 45), ("rang", 30)])
    specialties = [s for key in catalog.SPECIALTIES for s in catalog.SPECIALTIES[key]]

    cabinets: list[Cabinet] = []

    def new_cabinet() -> Cabinet:
        cabinet = Cabinet(len(cabinets), cities.pick(rng), rng.choice(catalog.STREETS),
                          rng.randrange(1, 180), cabinet_kinds.pick(rng), _phone(rng),
                          has_address=rng.random() >= 0.005)
        cabinets.append(cabinet)
        return cabinet

    people: list[Practitioner] = []
    primary: list[int] = []
    current, room = None, 0
    for index in range(practitioners):
        profession = professions.pick(rng)
        female = rng.random() < 0.55
        options = catalog.SPECIALTIES[profession.key]
        option = options[rng.randrange(len(options))]
        people.append(Practitioner(
            index=index, profession=profession, specialty=specialties.index(option),
            family=rng.choice(catalog.FAMILY_NAMES),
            given=rng.choice(catalog.GIVEN_FEMALE if female else catalog.GIVEN_MALE),
            female=female, rpps=rng.randrange(100) < profession.rpps_percent,
            prefixed=rng.random() < 0.75, phone=_phone(rng, landline=rng.random() < 0.6),
            email=rng.random() < 0.4, active=rng.random() >= 0.002))
        if room == 0:
            current, room = new_cabinet(), cabinet_sizes.pick(rng)
        assert current is not None
        primary.append(current.index)
        room -= 1

    by_city: dict[tuple[str, str], list[int]] = {}
    for cabinet in cabinets:
        by_city.setdefault((cabinet.city.name, cabinet.city.postal_code), []).append(
            cabinet.index)
    for person in people:
        count = place_counts.pick(rng)
        home = cabinets[primary[person.index]]
        neighbours = by_city[(home.city.name, home.city.postal_code)]
        sites = [home.index]
        while len(sites) < count:
            other = rng.choice(neighbours) if len(neighbours) > count else rng.randrange(
                len(cabinets))
            if other not in sites:
                sites.append(other)
        days = [d for d in WEEKDAYS if rng.random() >= 0.12]  # part-time: some days off
        saturday = rng.random() < 0.3
        density = daily.pick(rng)
        offset = rng.randrange(count)
        minutes = rng.choice(person.profession.slot_minutes)
        for number, site in enumerate(sites):
            mask = sum(1 << d for d in days if (d + offset) % count == number)
            if saturday and number == 0:
                mask |= 1 << SATURDAY
            person.places.append(Place(
                practitioner=person.index, number=number + 1, cabinet=site,
                weekday_mask=mask, slots_per_day=density,
                saturday_slots=max(1, density // 2), slot_minutes=minutes,
                morning_start=rng.choice((480, 510, 540)),
                afternoon_start=rng.choice((840, 870))))
    departments = sorted({c.city.department for c in cabinets})
    world = World(start, weeks, people, cabinets, departments, specialties)
    pk = world.first_practitioner_pk
    for person in people:
        person.pk = pk
        pk += 1 + 2 * len(person.places)
    world.slot_pk_offset = pk - 1
    return world


# -- resources -------------------------------------------------------------------------------

def specialty_concept(option: tuple[str | None, str | None]) -> Resource:
    code, label = option
    if code is None:
        return {"text": label}
    coding: Resource = {"system": SPECIALTY_SYSTEM, "code": code}
    if label:
        coding["display"] = label
    return {"coding": [coding]}


def _idnst(value: str) -> Resource:
    return {"use": "official",
            "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "IDNST"}]},
            "system": IDNST_SYSTEM, "value": value}


def _numbers(cabinet: Cabinet) -> tuple[str, str, str]:
    """(FINESS, SIRET, RPPS-rang id) of a cabinet, all unique per cabinet."""
    department = cabinet.city.department.replace("A", "0").replace("B", "0")
    finess = f"{department}{cabinet.index:07d}"
    siret = f"{7 + cabinet.index % 2}{cabinet.index:08d}00012"
    rpps = f"19{cabinet.index:08d}"
    return finess, siret, f"4{rpps}{luhn_digit(rpps)}01"


def organization_identifiers(cabinet: Cabinet, rng: random.Random) -> list[Resource]:
    finess, siret, rang = _numbers(cabinet)
    prefixed = rng.random() < 0.75
    if cabinet.kind == "finess":
        found = [_idnst("1" + finess if prefixed else finess)]
        if rng.random() < 0.5:  # both ids: SAS must get the FINESS one
            found.append(_idnst("3" + siret))
        return found
    if cabinet.kind == "siret":
        if prefixed:
            return [_idnst("3" + siret)]
        return [{"use": "official",
                 "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "SIRET"}]},
                 "system": SIRENE_SYSTEM, "value": siret}]
    return [_idnst(rang)]


def _address(cabinet: Cabinet, **extra: Any) -> Resource:
    address: Resource = {"use": "work", "type": "physical"}
    if cabinet.has_address:
        address["line"] = [f"{cabinet.number} {cabinet.street}"]
    address.update(city=cabinet.city.name, postalCode=cabinet.city.postal_code,
                   country="FRA", **extra)
    return address


def cabinet_name(cabinet: Cabinet) -> str:
    if cabinet.kind == "finess":
        return f"Centre de santé de {cabinet.city.name} – {cabinet.street}"
    return f"Cabinet médical {cabinet.street} ({cabinet.city.name})"


def organization(cabinet: Cabinet, seed: int) -> Resource:
    rng = random.Random(seed * 1_000_003 + cabinet.index)
    return {
        "resourceType": "Organization",
        "id": cabinet.org_id,
        "active": True,
        "identifier": organization_identifiers(cabinet, rng),
        "type": [{"text": "Centre de santé" if cabinet.kind == "finess"
                  else "Cabinet libéral"}],
        "name": cabinet_name(cabinet),
        "telecom": [{"system": "phone", "value": cabinet.phone, "use": "work"}],
        "address": [_address(cabinet)],
    }


def location(cabinet: Cabinet) -> Resource:
    return {
        "resourceType": "Location",
        "id": cabinet.location_id,
        "status": "active",
        "name": cabinet_name(cabinet),
        "mode": "instance",
        "type": [{"coding": [{"system": catalog.ROLE_CODE_SYSTEM, "code": "OF",
                              "display": "Outpatient facility"}]}],
        "telecom": [{"system": "phone", "value": cabinet.phone, "use": "work"}],
        "address": _address(cabinet),
        "position": {"longitude": round(cabinet.city.longitude + (cabinet.index % 97) * 1e-4, 6),
                     "latitude": round(cabinet.city.latitude + (cabinet.index % 89) * 1e-4, 6)},
        "managingOrganization": {"reference": f"Organization/{cabinet.org_id}"},
    }


def cpts_ids(department: str) -> tuple[str, str]:
    """(Organization id, HealthcareService id) of a département's CPTS."""
    return f"org-cpts-{department.lower()}", f"cpts-snp-{department.lower()}"


def cpts_resources(department: str, index: int) -> list[tuple[str, Resource]]:
    org_id, service_id = cpts_ids(department)
    # A CPTS is known to SAS by its FINESS (sas-cpts-organization-aggregator); "9…" keeps
    # these apart from the cabinets' (département-prefixed) FINESS numbers.
    finess = f"9{index:08d}"
    return [
        ("Organization", {
            "resourceType": "Organization", "id": org_id, "active": True,
            "identifier": [_idnst("1" + finess)],
            "type": [{"coding": [{"system": CATEGORIE_ETABLISSEMENT_SYSTEM, "code": "604"}]}],
            "name": f"CPTS du {department}",
        }),
        ("HealthcareService", {
            "resourceType": "HealthcareService", "id": service_id, "active": True,
            "providedBy": {"reference": f"Organization/{org_id}"},
            "category": [{"coding": [{
                "system": CATEGORIE_ETABLISSEMENT_SYSTEM, "code": "604",
                "display": "Communauté professionnelle territoriale de santé (CPTS)"}]}],
            "type": [{"text": "Soins non programmés"}],
            "specialty": [specialty_concept(("SM54", "Médecine générale"))],
            "name": f"Soins non programmés – CPTS du {department}",
            "appointmentRequired": True,
        }),
    ]


def practitioner(person: Practitioner) -> Resource:
    number = person.idnps if person.prefixed else person.national_number
    name: Resource = {"use": "official", "family": person.family, "given": [person.given]}
    if person.profession.title:
        name["prefix"] = [person.profession.title]
    telecom = [{"system": "phone", "value": person.phone, "use": "work"}]
    if person.email:
        telecom.append({"system": "email", "use": "work",
                        "value": f"{person.given.lower()}.{person.index}@sante.example"})
    return {
        "resourceType": "Practitioner",
        "id": person.id,
        "active": person.active,
        "identifier": [{"use": "official", "type": {"coding": [
            {"system": IDENTIFIER_TYPE_SYSTEM, "code": "IDNPS"}]},
            "system": IDNPS_SYSTEM, "value": number}],
        "name": [name],
        "telecom": telecom,
        "gender": "female" if person.female else "male",
        "qualification": [{"code": {"coding": [{
            "system": catalog.G15_SYSTEM, "code": person.profession.g15_code,
            "display": person.profession.g15_display}]}}],
    }


def practitioner_role(person: Practitioner, place: Place, cabinet: Cabinet,
                      specialties: list[tuple[str | None, str | None]]) -> Resource:
    return {
        "resourceType": "PractitionerRole",
        "id": place.role_id,
        "active": True,
        "practitioner": {"reference": f"Practitioner/{person.id}"},
        "organization": {"reference": f"Organization/{cabinet.org_id}"},
        "code": [{"coding": [{"system": catalog.G15_SYSTEM,
                              "code": person.profession.g15_code,
                              "display": person.profession.g15_display}]}],
        "specialty": [specialty_concept(specialties[person.specialty])],
        "location": [{"reference": f"Location/{cabinet.location_id}"}],
        "telecom": [{"system": "phone", "value": cabinet.phone, "use": "work"}],
    }


def schedule(person: Practitioner, place: Place, cabinet: Cabinet, world: World) -> Resource:
    last_day = date.fromordinal(world.start.toordinal() + world.weeks * 7 - 1)
    title = f"{person.profession.title} " if person.profession.title else ""
    return {
        "resourceType": "Schedule",
        "id": place.schedule_id,
        "active": True,
        "serviceType": [{"coding": [{"system": ACT_CODE_SYSTEM, "code": code,
                                     "display": ACT_DISPLAY[code]}]}
                        for code in person.profession.service_types],
        "specialty": [specialty_concept(world.specialties[person.specialty])],
        "actor": [{"reference": f"Practitioner/{person.id}"},
                  {"reference": f"PractitionerRole/{place.role_id}"}],
        "planningHorizon": {"start": world.start.isoformat(), "end": last_day.isoformat()},
        "comment": f"{title}{person.given} {person.family} – {cabinet_name(cabinet)}",
    }


def other_resources(world: World, seed: int, part: int = 0,
                    parts: int = 1) -> Iterator[tuple[int, str, Resource]]:
    """(pk, type, resource) of every resource but the Slots, for one of `parts` slices."""
    for cabinet in world.cabinets[part::parts]:
        yield world.organization_pk(cabinet.index), "Organization", organization(cabinet, seed)
    for index, department in list(enumerate(world.departments))[part::parts]:
        for offset, (kind, resource) in enumerate(cpts_resources(department, index)):
            yield world.cpts_pk(index) + offset, kind, resource
    for cabinet in world.cabinets[part::parts]:
        yield world.location_pk(cabinet.index), "Location", location(cabinet)
    for person in world.practitioners[part::parts]:
        yield person.pk, "Practitioner", practitioner(person)
        for number, place in enumerate(person.places):
            cabinet = world.cabinets[place.cabinet]
            yield person.pk + 1 + 2 * number, "PractitionerRole", practitioner_role(
                person, place, cabinet, world.specialties)
            yield person.pk + 2 + 2 * number, "Schedule", schedule(person, place, cabinet,
                                                                   world)
