"""The booking pages' test world: a doctor whose agenda SAS sees, slots placed relative to
today in Europe/Paris (the page shows the next 72 hours), a regulator account created as
SAS creates it (INT_R02), and a regulator's browser on the pages (Flask test client or
requests against gunicorn).
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests

from tests.sas_data import ACT, load, sas_slot
from tests.support.accounts import set_password

PARIS = ZoneInfo("Europe/Paris")
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
SAS_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
REGUL_PROFILE = ("https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
                 "FrPractitionerRegul")
OPERATOR = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
DOCTOR_RPPS = "810000000017"
REGULATOR_RPPS = "810002673899"  # what PSC's SubjectNameID carries (8 + RPPS)
SCHEDULE = "sch-dupont"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
TAKEN = "Ce créneau vient d'être pris"

Resource = dict[str, Any]


def paris(days: int, hour: int, minute: int = 0) -> str:
    """An instant `days` after today's date in Paris, at that wall-clock time."""
    day = datetime.now(PARIS).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).isoformat()


def paris_day(days: int) -> date:
    return datetime.now(PARIS).date() + timedelta(days=days)


def _slot(slot_id: str, days: int, hour: int, *kinds: str, minutes: int = 20,
          **extra: Any) -> Resource:
    start = datetime.fromisoformat(paris(days, hour))
    return sas_slot(slot_id, SCHEDULE, start.isoformat(),
                    (start + timedelta(minutes=minutes)).isoformat(), *kinds, **extra)


def doctor_agenda() -> list[Resource]:
    """Dr Dupont at the Cabinet des Terreaux: what SAS sees and what it must not."""
    return [
        {"resourceType": "Practitioner", "id": "dupont", "active": True,
         "identifier": [{"system": IDNPS, "value": DOCTOR_RPPS}],
         "name": [{"family": "Dupont", "given": ["Hélène"], "prefix": ["Dr"]}]},
        {"resourceType": "Location", "id": "terreaux", "name": "Cabinet des Terreaux",
         "address": {"line": ["4 place des Terreaux"], "city": "Lyon", "postalCode": "69001"}},
        {"resourceType": "PractitionerRole", "id": "role-dupont", "active": True,
         "practitioner": {"reference": "Practitioner/dupont"},
         "location": [{"reference": "Location/terreaux"}],
         "specialty": [{"text": "Médecine générale"}],
         "telecom": [{"system": "phone", "value": "04 78 00 00 01"}]},
        {"resourceType": "Schedule", "id": SCHEDULE, "active": True,
         "actor": [{"reference": "Practitioner/dupont"},
                   {"reference": "PractitionerRole/role-dupont"}]},
        # Offered to SAS within the next 72 hours.
        _slot("cabinet-1", 1, 9, "PUBLIC",
              serviceType=[{"coding": [{"system": ACT, "code": "AMB"}]},
                           {"text": "Consultation de médecine générale"}]),
        _slot("video-1", 1, 10, "PRO", "SNP",
              serviceType=[{"coding": [{"system": ACT, "code": "VR"}]},
                           {"text": "Téléconsultation de suivi"}]),
        _slot("domicile-2", 2, 14, "SNP", minutes=30,
              serviceType=[{"coding": [{"system": ACT, "code": "HH"}]},
                           {"text": "Visite à domicile"}]),
        # Never offered: patient-reserved, busy, past, beyond 72 hours.
        _slot("patients-1", 1, 11, "PATIENT"),
        _slot("occupe-1", 1, 12, "PUBLIC", status="busy"),
        _slot("hier", -1, 9, "PUBLIC"),
        _slot("plus-tard", 4, 9, "PUBLIC"),
    ]


OFFERED = ("cabinet-1", "video-1", "domicile-2")
HIDDEN = ("patients-1", "occupe-1", "hier", "plus-tard")


def regulator_resource(rpps: str = REGULATOR_RPPS, *, active: bool = True,
                       family: str = "LORIDON", email: str | None = None) -> Resource:
    return {"resourceType": "Practitioner", "meta": {"source": SAS_SYSTEM,
                                                     "profile": [REGUL_PROFILE]},
            "identifier": [{"type": {"coding": [{"system": TYPES, "code": "IDNPS"}]},
                            "system": IDNPS, "value": rpps}],
            "active": active, "name": [{"family": family, "given": ["Sébastien"]}],
            "telecom": [{"system": "email",
                         "value": email or f"{family.lower()}.{rpps}@regulation.example"}]}


def regulator_url(rpps: str = REGULATOR_RPPS) -> str:
    return f"/fhir/Practitioner?identifier={quote(f'{IDNPS}|{rpps}')}"


def put_regulator(client: Any, rpps: str = REGULATOR_RPPS, **kwargs: Any) -> str:
    """Create (or change) a regulator account as SAS does; its Practitioner id."""
    response = client.put(regulator_url(rpps), json=regulator_resource(rpps, **kwargs),
                          headers={"Content-Type": "application/fhir+json"})
    # A Flask test client's response or a requests one (live server).
    answer = response.get_json() if hasattr(response, "get_json") else response.json()
    assert response.status_code in (200, 201), answer
    return str(answer["id"])


def load_agenda(client: Any) -> None:
    load(client, doctor_agenda())


def signed_up_regulator(client: Any, engine: Any) -> str:
    """The doctor's agenda and an active regulator who knows his password (his id)."""
    load_agenda(client)
    practitioner_id = put_regulator(client)
    set_password(engine, practitioner_id)
    return practitioner_id


def booking_link(slot_id: str, origin: str | None = "sas") -> str:
    """What SAS opens: our Slot.comment, `&origin=…` appended."""
    link = f"/agenda/{SCHEDULE}?creneau={slot_id}"
    return f"{link}&origin={origin}" if origin else link


def text(page: str) -> str:
    """The page as read: tags out, entities decoded, spaces squeezed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def csrf(page: str) -> str:
    match = CSRF_RE.search(page)
    assert match, "no CSRF field"
    return match.group(1)


def patient_form(slot_id: str, token: str, **changes: str) -> dict[str, str]:
    form = {"csrf_token": token, "creneau": slot_id, "nom": "Durand", "prenom": "Léa",
            "naissance": "1985-04-12", "telephone": "06 12 34 56 78",
            "email": "lea.durand@example.fr"}
    form.update(changes)
    return form


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def unique_email() -> str:
    return f"regulateur-{uuid.uuid4().hex[:8]}@regulation.example"


class LiveFhir:
    """requests as a FHIR client of a live server (`put_regulator` takes it as `client`)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def put(self, path: str, json: object, headers: dict[str, str]) -> requests.Response:
        return requests.put(self.base + path.removeprefix("/fhir"), json=json,
                            headers=headers, timeout=30)

    def read(self, path: str) -> Any:
        response = requests.get(f"{self.base}/{path.lstrip('/')}",
                                headers={"Accept": "application/fhir+json"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def load(self, resources: list[Resource]) -> None:
        """PUT every resource in one transaction Bundle."""
        response = requests.post(self.base, json={
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT",
                                                  "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]},
            headers={"Content-Type": "application/fhir+json"}, timeout=60)
        assert response.status_code == 200, response.text
