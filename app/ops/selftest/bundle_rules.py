"""The checks the ANS kit runs on the answer to the individual-offer SAS search, as pure
functions of the Bundle (no HTTP here).

Each returns a Result; the texts say what was found, in French and English."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from app.ops.selftest.report import Result, Status, Text

SAS = "http://sas.fr/fhir/StructureDefinition/"
BUNDLE = SAS + "BundleAgregateur"
PROFILES = {"Slot": SAS + "FrSlotAgregateur", "Schedule": SAS + "FrScheduleAgregateur",
            "Practitioner": SAS + "FrPractitionerAgregateur",
            "PractitionerRole": SAS + "FrPractitionerRoleExerciceAgregateur"}
SLOT_TYPES = {"PUBLIC", "PRO", "SNP", "CPTS", "PRIVATE"}
CONSULTATION_TYPES = {"AMB", "VR", "HH", "604"}
APPOINTMENT_TYPES = {"ROUTINE", "WALKIN"}
IDNPS = re.compile(r"^8\d{11}$|^0[0-9A-Za-z]{9,}$")  # RPPS, or ADELI
IDNST = re.compile(r"^1\d{9}$|^3\d{14}$|^4\d{14}$")
PHONE = re.compile(r"^\+(33|262|590|596|594|508|269|687|689|681)\d{6,9}$")
POSTAL_CODE = re.compile(r"^\d{5}$")
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Search:
    """What was asked: to check the answer against."""

    url: str  # exactly as sent
    identifiers: tuple[str, ...]  # prefixed IDNPS values
    now: datetime  # aware
    last_day: date  # J+2, Paris


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == kind]


def _result(rule: str, problems: list[Text], ok: Text, *,
            status: Status = Status.FAIL) -> Result:
    if not problems:
        return Result(rule, Status.PASS, ok)
    shown = problems[:8]
    more = len(problems) - len(shown)
    fr = "\n".join(p.fr for p in shown) + (f"\n… et {more} autres" if more else "")
    en = "\n".join(p.en for p in shown) + (f"\n… and {more} more" if more else "")
    return Result(rule, status, Text(fr, en))


def profiles(bundle: dict[str, Any], _search: Search) -> Result:
    problems = []
    if bundle.get("meta", {}).get("profile") != [BUNDLE]:
        problems.append(Text(f"Bundle.meta.profile = {bundle.get('meta', {}).get('profile')}, "
                             f"attendu [{BUNDLE}]",
                             f"Bundle.meta.profile = {bundle.get('meta', {}).get('profile')}, "
                             f"expected [{BUNDLE}]"))
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        expected = PROFILES.get(kind)
        found = resource.get("meta", {}).get("profile")
        if expected and found != [expected]:
            where = f"{kind}/{resource.get('id')}"
            problems.append(Text(f"{where} : meta.profile = {found}, attendu [{expected}] "
                                 "(le kit ne retient que les ressources à un seul profil, "
                                 "sans version)",
                                 f"{where}: meta.profile = {found}, expected [{expected}] "
                                 "(the kit only counts resources with one unversioned "
                                 "profile)"))
    return _result("ps-profiles", problems, Text(
        "chaque ressource porte son seul profil SAS, sans version",
        "every resource carries its one SAS profile, unversioned"))


def _instant(raw: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def slots(bundle: dict[str, Any], search: Search) -> Result:
    problems: list[Text] = []
    found = resources(bundle, "Slot")
    for slot in found:
        where = f"Slot/{slot.get('id')}"

        def problem(fr: str, en: str, where: str = where) -> None:
            problems.append(Text(f"{where} : {fr}", f"{where}: {en}"))

        if slot.get("status") != "free":
            problem(f"statut {slot.get('status')!r} au lieu de free",
                    f"status {slot.get('status')!r} instead of free")
        start, end = _instant(slot.get("start")), _instant(slot.get("end"))
        if start is None or end is None:
            problem("start ou end absent ou sans fuseau", "start or end missing or without "
                    "an offset")
        else:
            if start >= end:
                problem("start n'est pas avant end", "start is not before end")
            if start < search.now.replace(second=0, microsecond=0):
                problem(f"commence avant maintenant ({slot.get('start')})",
                        f"starts before now ({slot.get('start')})")
            if start.astimezone(PARIS).date() > search.last_day:
                problem(f"commence après le {search.last_day:%d/%m} (J+2, Paris) : "
                        f"{slot.get('start')}",
                        f"starts after {search.last_day} (J+2, Paris): {slot.get('start')}")
        codes = {c.get("code") for c in slot.get("appointmentType", {}).get("coding", [])}
        if not codes or not codes <= APPOINTMENT_TYPES:
            problem(f"appointmentType {sorted(map(str, codes))}, attendu ROUTINE ou WALKIN",
                    f"appointmentType {sorted(map(str, codes))}, expected ROUTINE or WALKIN")
        security = {str(s.get("code", "")).upper() for s in slot.get("meta", {})
                    .get("security", [])}
        if not security or not security <= SLOT_TYPES:
            problem(f"meta.security {sorted(security)} hors PUBLIC/PRO/SNP/CPTS",
                    f"meta.security {sorted(security)} outside PUBLIC/PRO/SNP/CPTS")
        services = {c.get("code") for s in slot.get("serviceType", [])
                    for c in s.get("coding", [])}
        if not services <= CONSULTATION_TYPES:
            problem(f"serviceType {sorted(map(str, services))} hors AMB/VR/HH",
                    f"serviceType {sorted(map(str, services))} outside AMB/VR/HH")
        if not str(slot.get("comment") or "").strip():
            problem("pas de commentaire (le lien de prise de rendez-vous)",
                    "no comment (the booking link)")
    if not found:
        problems.append(Text("aucun créneau FrSlotAgregateur", "no FrSlotAgregateur slot"))
    return _result("ps-slots", problems, Text(
        f"{len(found)} créneaux libres, dans la fenêtre, types conformes",
        f"{len(found)} free slots, in the window, with conformant types"))


def references(bundle: dict[str, Any], _search: Search) -> Result:
    problems: list[Text] = []
    practitioners = {f"Practitioner/{p.get('id')}" for p in resources(bundle, "Practitioner")}
    roles = {f"PractitionerRole/{r.get('id')}" for r in resources(bundle, "PractitionerRole")}
    schedules = {f"Schedule/{s.get('id')}" for s in resources(bundle, "Schedule")}
    for role in resources(bundle, "PractitionerRole"):
        where = f"PractitionerRole/{role.get('id')}"
        target = role.get("practitioner", {}).get("reference")
        if target not in practitioners:
            problems.append(Text(f"{where}.practitioner = {target!r}, hors du Bundle",
                                 f"{where}.practitioner = {target!r}, not in the Bundle"))
        contained = [c for c in role.get("contained", []) if c.get("resourceType") == "Location"]
        places = [ref.get("reference") for ref in role.get("location", [])]
        if not contained or places != [f"#{c.get('id')}" for c in contained]:
            problems.append(Text(f"{where}.location {places} ne désigne pas les lieux contenus "
                                 "dans l'ordre",
                                 f"{where}.location {places} does not name its contained "
                                 "places in order"))
        for place in contained:
            address = place.get("address", {})
            if not (address.get("line") and address.get("city")
                    and POSTAL_CODE.match(str(address.get("postalCode", "")))):
                problems.append(Text(f"{where} : lieu #{place.get('id')} sans adresse complète "
                                     "(ligne, ville, code postal à 5 chiffres)",
                                     f"{where}: place #{place.get('id')} lacks a full address "
                                     "(line, city, 5-digit postal code)"))
    for schedule in resources(bundle, "Schedule"):
        where = f"Schedule/{schedule.get('id')}"
        actors = [a.get("reference") for a in schedule.get("actor", [])]
        if sum(a in practitioners for a in actors) != 1 or not any(a in roles for a in actors):
            problems.append(Text(f"{where}.actor {actors} : attendu un Practitioner et un "
                                 "PractitionerRole du Bundle",
                                 f"{where}.actor {actors}: expected one Practitioner and a "
                                 "PractitionerRole of the Bundle"))
    for slot in resources(bundle, "Slot"):
        target = slot.get("schedule", {}).get("reference")
        if target not in schedules:
            problems.append(Text(f"Slot/{slot.get('id')}.schedule = {target!r}, hors du Bundle",
                                 f"Slot/{slot.get('id')}.schedule = {target!r}, not in the "
                                 "Bundle"))
    return _result("ps-references", problems, Text(
        "références relatives résolues dans le Bundle, lieux contenus avec adresse",
        "relative references resolved in the Bundle, contained places with addresses"))


def practitioner(bundle: dict[str, Any], search: Search) -> Result:
    problems: list[Text] = []
    found = resources(bundle, "Practitioner")
    if len(found) != len(search.identifiers):
        problems.append(Text(f"{len(found)} Practitioner pour {len(search.identifiers)} "
                             "identifiant(s) demandé(s)",
                             f"{len(found)} Practitioner for {len(search.identifiers)} "
                             "identifier(s) asked"))
    for person in found:
        where = f"Practitioner/{person.get('id')}"
        first = (person.get("identifier") or [{}])[0].get("value")
        if first not in search.identifiers or not IDNPS.match(str(first)):
            problems.append(Text(f"{where} : premier identifiant {first!r}, attendu l'IDNPS "
                                 f"demandé ({', '.join(search.identifiers)})",
                                 f"{where}: first identifier {first!r}, expected the IDNPS "
                                 f"asked ({', '.join(search.identifiers)})"))
        name = (person.get("name") or [{}])[0]
        if not name.get("family") or not (name.get("given") or [""])[0]:
            problems.append(Text(f"{where} : nom ou prénom absent",
                                 f"{where}: family or given name missing"))
    return _result("ps-practitioner", problems, Text(
        "IDNPS demandé en premier identifiant, nom et prénom présents",
        "the IDNPS asked as first identifier, family and given names present"))


def structure(bundle: dict[str, Any], _search: Search) -> Result:
    problems: list[Text] = []
    for role in resources(bundle, "PractitionerRole"):
        where = f"PractitionerRole/{role.get('id')}"
        value = role.get("organization", {}).get("identifier", {}).get("value")
        if not IDNST.match(str(value or "")):
            problems.append(Text(f"{where}.organization.identifier = {value!r} : attendu un "
                                 "IDNST (1+FINESS, 3+SIRET, 4+RPPS-rang)",
                                 f"{where}.organization.identifier = {value!r}: expected an "
                                 "IDNST (1+FINESS, 3+SIRET, 4+RPPS-rang)"))
    failed = _result("ps-structure", problems, Text("", ""))
    if problems:
        return failed
    phones = [((r.get("telecom") or [{}])[0].get("value"), r.get("id"))
              for r in resources(bundle, "PractitionerRole")]
    bad = [f"PractitionerRole/{i}: {v!r}" for v, i in phones if not PHONE.match(str(v or ""))]
    if bad:
        # The kit's phone test is optional: a warning.
        return Result("ps-structure", Status.WARN, Text(
            "IDNST conformes ; téléphone absent ou pas au format +33… : " + ", ".join(bad),
            "IDNSTs conformant; telephone missing or not +33…: " + ", ".join(bad)))
    return Result("ps-structure", Status.PASS, Text(
        "IDNST conformes, téléphones au format international",
        "IDNSTs conformant, telephones in international form"))


def total(bundle: dict[str, Any], _search: Search) -> Result:
    count = len(resources(bundle, "Slot"))
    if bundle.get("total") == count:
        return Result("ps-total", Status.PASS, Text(f"total = {count}", f"total = {count}"))
    return Result("ps-total", Status.WARN, Text(
        f"total = {bundle.get('total')!r} pour {count} créneaux (avertissement du kit)",
        f"total = {bundle.get('total')!r} for {count} slots (a kit warning)"))


def _query(url: str) -> dict[str, list[str]]:
    return {key: sorted(values) for key, values in parse_qs(
        urlsplit(url).query, keep_blank_values=True).items()}


def self_link(bundle: dict[str, Any], search: Search) -> Result:
    links = bundle.get("link") or [{}]
    url = str(links[0].get("url", ""))
    if url and _query(url) == _query(search.url):
        return Result("ps-self-link", Status.PASS, Text(
            "la requête du lien self est celle envoyée", "the self link's query is the one sent"))
    return Result("ps-self-link", Status.FAIL, Text(
        f"link[0].url = {url!r}\nrequête envoyée : {search.url}",
        f"link[0].url = {url!r}\nrequest sent: {search.url}"))


def example_systems(bundle: dict[str, Any], _search: Search) -> Result:
    found = sorted({str(i.get("system")) for e in bundle.get("entry", [])
                    for i in _identifiers(e.get("resource", {}))
                    if "example." in str(i.get("system", ""))})
    if not found:
        return Result("ps-example-systems", Status.PASS, Text(
            "aucun système example.*", "no example.* system"))
    return Result("ps-example-systems", Status.FAIL, Text(
        f"systèmes refusés par le validateur : {', '.join(found)}",
        f"systems the validator refuses: {', '.join(found)}"))


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(resource.get("identifier", []))
    for nested in resource.get("contained", []):
        found.extend(nested.get("identifier", []))
    organization = resource.get("organization", {})
    if isinstance(organization.get("identifier"), dict):
        found.append(organization["identifier"])
    return [i for i in found if isinstance(i, dict)]


# (rule id, check), in the report's order.
BUNDLE_RULES: tuple[tuple[str, Callable[[dict[str, Any], Search], Result]], ...] = (
    ("ps-profiles", profiles), ("ps-slots", slots), ("ps-references", references),
    ("ps-practitioner", practitioner), ("ps-structure", structure), ("ps-total", total),
    ("ps-self-link", self_link), ("ps-example-systems", example_systems))


# -- the CPTS and SOS Médecins offers -----------------------------------------------------------

IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
SLOT_SERVICE_TYPE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"


def _one_profile(resource: dict[str, Any], expected: str) -> Text | None:
    found = resource.get("meta", {}).get("profile")
    if found == [expected]:
        return None
    where = f"{resource.get('resourceType')}/{resource.get('id')}"
    return Text(f"{where} : meta.profile = {found}, attendu [{expected}]",
                f"{where}: meta.profile = {found}, expected [{expected}]")


def cpts_problems(bundle: dict[str, Any]) -> list[Text]:
    """The kit's CPTS checks: free slots in the CPTS profile, those labelled CPTS (one at
    least) naming HealthcareServices of the Bundle, each provided by a CPTS Organization
    of the Bundle with a FINESS (1…)."""
    problems: list[Text] = []
    services = {f"HealthcareService/{h.get('id')}": h
                for h in resources(bundle, "HealthcareService")}
    organizations = {f"Organization/{o.get('id')}": o for o in resources(bundle, "Organization")}
    shared = 0
    for slot in resources(bundle, "Slot"):
        problems += filter(None, [_one_profile(slot, IG + "sas-cpts-slot-aggregator")])
        named = [e.get("valueReference", {}).get("reference") for s in slot.get("serviceType", [])
                 for e in s.get("extension", []) if e.get("url") == SLOT_SERVICE_TYPE]
        labels = {str(s.get("code", "")).upper() for s in slot.get("meta", {})
                  .get("security", [])}
        shared += "CPTS" in labels
        if slot.get("status") != "free" or ("CPTS" in labels and (
                not named or not set(named) <= set(services))):
            problems.append(Text(f"Slot/{slot.get('id')} : libre, et rattaché à un "
                                 f"HealthcareService du Bundle s'il est CPTS ({named})",
                                 f"Slot/{slot.get('id')}: expected free, and linked to a "
                                 f"HealthcareService of the Bundle when CPTS ({named})"))
    if not shared:
        problems.append(Text("aucun créneau partagé avec une CPTS (étiquette CPTS)",
                             "no slot shared with a CPTS (CPTS label)"))
    for reference, service in services.items():
        problems += filter(None, [_one_profile(
            service, IG + "sas-cpts-healthcareservice-aggregator")])
        provider = service.get("providedBy", {}).get("reference")
        organization = organizations.get(provider or "")
        value = ((organization or {}).get("identifier") or [{}])[0].get("value")
        if organization is None or not re.match(r"^1\d{9}$", str(value or "")):
            problems.append(Text(f"{reference}.providedBy = {provider!r} : attendu une CPTS "
                                 f"du Bundle identifiée par son FINESS (1…), trouvé {value!r}",
                                 f"{reference}.providedBy = {provider!r}: expected a CPTS of "
                                 f"the Bundle named by its FINESS (1…), found {value!r}"))
    return problems


def sos_problems(bundle: dict[str, Any], sirets: tuple[str, ...]) -> list[Text]:
    """The kit's SOS checks: each Schedule's first actor a Location of the Bundle, managed by
    an association asked for (its SIRET first), with a name, a 5-digit postal code and a
    +33… phone; slots of the Bundle's Schedules."""
    problems: list[Text] = []
    places = {f"Location/{p.get('id')}": p for p in resources(bundle, "Location")}
    organizations = {f"Organization/{o.get('id')}": o for o in resources(bundle, "Organization")}
    schedules = {f"Schedule/{s.get('id')}" for s in resources(bundle, "Schedule")}
    asked = {value.removeprefix("3") for value in sirets}
    for schedule in resources(bundle, "Schedule"):
        first = (schedule.get("actor") or [{}])[0].get("reference")
        if first not in places:
            problems.append(Text(f"Schedule/{schedule.get('id')}.actor[0] = {first!r} : "
                                 "attendu un Location du Bundle",
                                 f"Schedule/{schedule.get('id')}.actor[0] = {first!r}: "
                                 "expected a Location of the Bundle"))
    for reference, place in places.items():
        manager = organizations.get(place.get("managingOrganization", {}).get("reference", ""))
        siret = str(((manager or {}).get("identifier") or [{}])[0].get("value", ""))
        phone = str((place.get("telecom") or [{}])[0].get("value", ""))
        if (manager is None or siret.removeprefix("3") not in asked or not place.get("name")
                or not POSTAL_CODE.match(str(place.get("address", {}).get("postalCode", "")))
                or not PHONE.match(phone)):
            problems.append(Text(f"{reference} : gestionnaire {siret or '—'}, nom, code postal "
                                 f"ou téléphone ({phone or '—'}) non conformes",
                                 f"{reference}: manager {siret or '—'}, name, postal code or "
                                 f"telephone ({phone or '—'}) not conformant"))
    for slot in resources(bundle, "Slot"):
        if slot.get("schedule", {}).get("reference") not in schedules:
            problems.append(Text(f"Slot/{slot.get('id')} : Schedule hors du Bundle",
                                 f"Slot/{slot.get('id')}: Schedule not in the Bundle"))
    return problems
