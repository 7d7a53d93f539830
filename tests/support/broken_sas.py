"""A deliberately broken "agenda server" for the self-test: each SAS rule it breaks is one
the ANS kit checks, so that `fhir-agenda sas-selftest` must report every one of them."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SAS = "http://sas.fr/fhir/StructureDefinition/"
KNOWN = ("810000000001", "810000000002")
SLOW_SECONDS = 1.3  # the single-practitioner search: over the kit's 1 s


def _slot(now: float) -> dict[str, Any]:
    past = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 3600))
    return {"resourceType": "Slot", "id": "s1",
            "meta": {"profile": [SAS + "FrSlotAgregateur|1.2.0"],  # versioned
                     "security": [{"code": "XYZ"}]},
            "status": "busy", "start": past, "end": past,  # past, not before end
            "appointmentType": {"coding": [{"code": "CHECKUP"}]},
            "schedule": {"reference": "Schedule/elsewhere"},
            "comment": "http://127.0.0.1/agenda/1"}  # no query for SAS's &origin=…


def _bundle(url: str, identifiers: list[str]) -> dict[str, Any]:
    practitioner = {"resourceType": "Practitioner", "id": "p1",
                    "meta": {"profile": [SAS + "FrPractitionerAgregateur"]},
                    "identifier": [{"system": "https://example.com/ids", "value": "123"}],
                    "name": [{"family": "Martin"}]}  # no given name
    role = {"resourceType": "PractitionerRole", "id": "r1",
            "meta": {"profile": [SAS + "FrPractitionerRoleExerciceAgregateur"]},
            "practitioner": {"reference": "Practitioner/other"},
            "organization": {"identifier": {"value": "12345"}},
            "location": [{"reference": "Location/l1"}]}
    schedule = {"resourceType": "Schedule", "id": "sc1",
                "meta": {"profile": [SAS + "FrScheduleAgregateur"]},
                "actor": [{"reference": "Practitioner/p1"}]}
    return {"resourceType": "Bundle", "type": "searchset", "total": 7,
            "link": [{"relation": "self", "url": url.replace("status=free", "status=busy")}],
            "entry": [{"resource": r} for r in (_slot(time.time()), schedule, practitioner,
                                                role)][: 4 if identifiers else 0]}


def _outcome(status: int) -> Response:
    return Response(json.dumps({"resourceType": "OperationOutcome", "issue": []}), status,
                    content_type="application/fhir+json")


@Request.application
def broken(request: Request) -> Response:
    path = request.path.removeprefix("/fhir")
    if path == "/metadata":
        return _json({"resourceType": "CapabilityStatement", "fhirVersion": "3.0.2"})
    if path == "/Practitioner" and request.method == "GET":
        return _json({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Practitioner", "id": f"p{n}", "identifier": [
                {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": value}]}}
            for n, value in enumerate(KNOWN)]})
    if path == "/Slot":
        query = parse_qs(request.query_string.decode())
        people = query.get("schedule.actor:Practitioner.identifier", [""])[0].split(",")
        if len(people) == 1:
            time.sleep(SLOW_SECONDS)
        found = [p.split("|")[-1] for p in people if p.split("|")[-1] in KNOWN]
        bundle = _bundle(request.url, found)
        # Every practitioner asked in one resource: "found with slots", never two of them.
        for value in found:
            bundle["entry"][2]["resource"]["identifier"].append(
                {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": value})
        return _json(bundle, "application/json")  # 26 ids, 73 h: accepted
    if path == "/Practitioner" and request.method == "POST":
        return _json({"resourceType": "Practitioner", "id": "new"}, status=201)  # anything
    if path == "/Practitioner" and request.method == "PUT":
        return _outcome(500)
    return _outcome(404)


def _json(document: Any, media: str = "application/fhir+json", status: int = 200) -> Response:
    return Response(json.dumps(document), status, content_type=media)


class BrokenServer:
    def __init__(self) -> None:
        self.server = make_server("127.0.0.1", 0, broken, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BrokenServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
