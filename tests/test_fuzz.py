"""Fuzzing the FHIR REST API through HTTP with Hypothesis.

Whatever a client sends under /fhir, the server must never answer 5xx, and every error it
answers (4xx) must be a FHIR OperationOutcome in JSON; so must every failed entry of a
batch/transaction-response, and a 2xx body must be JSON. One more property is checked where
the fuzzing meets it: once a Subscription is accepted, a valid write of the type its
criteria name must still succeed (its criteria are run on every such write). The cases:

1. random JSON bodies POSTed and PUT to every supported type, and random batch/transaction
   Bundles POSTed to /fhir;
2. small valid resources with random mutations (dropped, replaced, duplicated elements,
   wrong codes, bad dates and references, urn:uuid references, SAS regulator Practitioners,
   Subscriptions with random criteria) sent by POST, PUT, conditional PUT, If-None-Exist
   and transaction Bundles;
3. random search queries for every type (parameters of the registry with random modifiers,
   prefixes, chains, OR lists, result controls), SAS slot searches and `_history`, under
   `Prefer: handling=lenient` and `strict`, by GET and `POST _search`;
4. random paths, methods and headers (Accept, Content-Type, If-Match, If-None-Exist,
   Prefer, User-Agent) with random bodies.

The database is seeded once per test with the SAS agenda of tests/sas_data.py, a patient,
a regulator account, a SAS-notified appointment and two active Subscriptions, so that
searches, includes, chains, conditional writes and notifications have something to find.

Every bug found is kept, minimised, as an `@example` of the test that found it (the comment
above each test's examples says what breaks), so that the test documents it until it is
fixed; the tests pass once those bugs are fixed. Runs are derandomised (the same cases on
every run, so CI stays stable): `FUZZ_RANDOM=1` explores new cases, `FUZZ_SCALE=10` runs ten
times more. `test_fuzz_case_count` checks (and prints) that at least 1,000 cases ran per
backend; about 1,800 run in some 25 s per backend on a quiet 2-core machine.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.scheduling.overlap import OVERBOOKING_URL
from app.search.registry import SUPPORTED_TYPES, params_for
from tests import sas_data
from tests.factories import bundle, entry

Resource = dict[str, Any]

FHIR_JSON = "application/fhir+json"
JSON_MEDIA_TYPES = {FHIR_JSON, "application/json", "application/json+fhir"}
SEVERITIES = {"fatal", "error", "warning", "information"}

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXPLORE = os.environ.get("FUZZ_RANDOM", "") not in {"", "0"}
MIN_CASES_PER_BACKEND = 1000
SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
              HealthCheck.data_too_large, HealthCheck.large_base_example,
              HealthCheck.filter_too_much]


def examples(count: int) -> int:
    return max(1, round(count * SCALE))


# Number of cases (test body runs) per (backend, test), and the tests where a case failed.
CASES: Counter[tuple[str, str]] = Counter()
FAILED: set[tuple[str, str]] = set()
FUZZ_TESTS = ("random_bodies", "random_bundles", "mutated_resources", "random_searches",
              "random_requests")

IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
SAS_SOURCE = "urn:oid:1.2.250.1.213.3.6"
ID_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
OPERATOR = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
REGULATOR_ID = "3b0e8b7a-52a4-4d6e-9a39-7f0d3c1e2a10"
WRITABLE_TYPES = tuple(t for t in SUPPORTED_TYPES if t != "AuditEvent")
# A few fixed urn:uuid fullUrls, so that generated references can hit generated entries.
URNS = tuple(f"urn:uuid:{uuid.UUID(int=n)}" for n in range(1, 5))


# -- the server under test -------------------------------------------------------------------

class ServerLog(logging.Handler):
    """Collects what the application logs at ERROR (the tracebacks of unhandled errors)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _short(data: Any, limit: int = 1500) -> str:
    text = data if isinstance(data, str) else repr(data)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _outcome_problem(response: Any) -> str | None:
    """Why an error answer is not a FHIR OperationOutcome in JSON (None when it is)."""
    if response.mimetype not in JSON_MEDIA_TYPES:
        return f"Content-Type {response.content_type!r} is not FHIR JSON"
    try:
        outcome = json.loads(response.data)
    except ValueError as exc:
        return f"the body is not JSON ({exc})"
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return "the body is not an OperationOutcome"
    issues = outcome.get("issue")
    if not isinstance(issues, list) or not issues:
        return "the OperationOutcome has no issue"
    for issue in issues:
        if not isinstance(issue, dict) or issue.get("severity") not in SEVERITIES or not (
                isinstance(issue.get("code"), str) and issue["code"]):
            return f"malformed issue {issue!r}"
    return None


def _bundle_problem(answer: Any) -> str | None:
    """A batch/transaction-response must not hide 5xx entries or non-OperationOutcome errors."""
    if not isinstance(answer, dict) or answer.get("type") not in {"batch-response",
                                                                 "transaction-response"}:
        return None
    for index, item in enumerate(answer.get("entry") or []):
        response = item.get("response") or {}
        status = str(response.get("status", ""))
        if status.startswith("5"):
            return f"entry[{index}] answered {status}"
        if status[:1] == "4" and (response.get("outcome") or {}).get(
                "resourceType") != "OperationOutcome":
            return f"entry[{index}] answered {status} without an OperationOutcome"
    return None


@dataclass
class Fuzz:
    """Sends requests to the test client and checks every answer."""

    client: Any
    backend: str
    log: ServerLog

    @contextmanager
    def case(self, test: str) -> Iterator[None]:
        CASES[(self.backend, test)] += 1
        try:
            yield
        except Exception:
            FAILED.add((self.backend, test))
            raise

    def send(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        headers = {"Content-Type": FHIR_JSON, **(headers or {})}
        data = encode(body)
        seen = len(self.log.lines)
        try:
            response = self.client.open(path, method=method, data=data, headers=headers)
        except Exception as exc:  # an error that escaped every error handler
            raise AssertionError(self._describe(method, path, headers, data, None, seen,
                                                f"the request raised {exc!r}")) from exc
        problem = None
        if response.status_code >= 500:
            problem = f"answered {response.status_code}"
        elif response.status_code >= 400 and method != "HEAD":
            problem = _outcome_problem(response)
        elif response.status_code < 300 and response.data and method != "HEAD":
            try:
                problem = _bundle_problem(json.loads(response.data))
            except ValueError as exc:
                problem = f"a {response.status_code} answer whose body is not JSON ({exc})"
        if problem:
            raise AssertionError(self._describe(method, path, headers, data, response, seen,
                                                problem))
        return response

    def _describe(self, method: str, path: str, headers: dict[str, str], data: Any,
                  response: Any, seen: int, problem: str) -> str:
        lines = [f"{problem}", f"request: {method} {path}", f"headers: {headers}",
                 f"body: {_short(data)}"]
        if response is not None:
            lines += [f"response: {response.status_code} {response.content_type}",
                      f"response body: {_short(response.get_data(as_text=True))}"]
        lines += ["server log:", *(self.log.lines[seen:] or ["(nothing)"])]
        return "\n".join(lines)


def encode(body: Any) -> bytes | None:
    """Request bytes: JSON for values (NaN and lone surrogates included), bytes as they are."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body).encode()


def body_of(response: Any) -> Any:
    try:
        return json.loads(response.data) if response.data else None
    except ValueError:
        return None


def _seed() -> list[Resource]:
    """The SAS agenda plus what the other interactions need to meet in the database."""
    extra: list[Resource] = [
        {"resourceType": "Patient", "id": "pat-1", "active": True,
         "identifier": [{"system": "urn:example:ipp", "value": "IPP-1"}],
         "name": [{"family": "Durand", "given": ["Paul"]}], "birthDate": "1980-05-17",
         "gender": "male", "generalPractitioner": [{"reference": "Practitioner/martin"}]},
        {"resourceType": "HealthcareService", "id": "hs-1", "active": True,
         "name": "Consultation", "providedBy": {"reference": "Organization/org-finess"},
         "location": [{"reference": "Location/loc-a"}]},
        regulator(REGULATOR_ID, "regulateur@sas.example", resource_id="reg-1"),
        {**appointment(), "id": "appt-1"},
        # The fuzz writes Dr Martin's appointment at the same time again and again: an
        # agenda of his allows overbooking (app/scheduling/overlap.py).
        {"resourceType": "Schedule", "id": "sch-martin-overbooking", "active": True,
         "actor": [{"reference": "Practitioner/martin"}],
         "extension": [{"url": OVERBOOKING_URL, "valueBoolean": True}]},
        {"resourceType": "Subscription", "id": "sub-appointments", "status": "active",
         "reason": "fuzz", "criteria": "Appointment?status=booked",
         "channel": {"type": "rest-hook", "endpoint": "https://agenda.example/hook",
                     "payload": FHIR_JSON, "header": ["Authorization: Bearer x"]}},
        {"resourceType": "Subscription", "id": "sub-slots", "status": "active",
         "reason": "fuzz", "criteria": "Slot?schedule=Schedule/sch-martin-a&status=free",
         "channel": {"type": "rest-hook", "endpoint": "https://agenda.example/slots"}},
    ]
    return [*sas_data.agenda(), *extra]


SEEDED_SUBSCRIPTIONS = {"sub-appointments", "sub-slots"}


@pytest.fixture
def fuzz(app: Any, client: Any, db_backend: str) -> Iterator[Fuzz]:
    state = app.extensions["agenda"]
    # Turn the SAS notifier on (nothing is delivered: no worker runs), so that appointments
    # booked by regulators go through it too.
    state.settings = dataclasses.replace(state.settings, sas_base_url="https://sas.example/fhir")
    sas_data.load(client, _seed())
    log = ServerLog()
    logger = logging.getLogger("app")
    logger.addHandler(log)
    try:
        yield Fuzz(client, db_backend, log)
    finally:
        logger.removeHandler(log)


# -- values ----------------------------------------------------------------------------------

DATES = (
    "2030-03-10", "2030-03", "2030", "2030-03-10T09:00:00+01:00", "2030-03-10T09:00:00Z",
    "2030-03-10T09:00", "2030-03-10T09:00:00.123456789Z", "2026-11-02T09:00:00",
    "2026-13-45", "2026-02-30", "2026-11-02T25:00:00Z", "2030-03-10T09:00:00+25:00",
    "2030-03-10T09:00:00-14:00", "0001-01-01", "0001-01-01T00:00:00+14:00", "9999",
    "9999-12", "9999-12-31", "9999-12-31T23:59:59-12:00", "0000", "20300310", "now", "",
    "²⁰²⁶", "１２３４-05-06", "2030-03-10T09:00:00 01:00",
)
DATE_PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "GE")
REFERENCES = (
    "Practitioner/martin", "Practitioner/does-not-exist", "Patient/pat-1", "PractitionerRole/"
    "role-martin-a", "Schedule/sch-martin-a", "Slot/m-a-public", "Location/loc-a",
    "Organization/org-finess", "Appointment/appt-1", "Subscription/sub-slots", "AuditEvent/1",
    *URNS, "urn:uuid:not-a-uuid", "urn:oid:1.2.3", "#contained", "#", "Foo/1", "Practitioner/",
    "/Practitioner/martin", "http://localhost/fhir/Practitioner/martin",
    "http://elsewhere.example/fhir/Patient/1", "Practitioner/martin/_history/1",
    "Practitioner/martin/_history/x", "Practitioner/" + "x" * 65, "Practitioner/mar tin", "",
    "Ω/1", "martin", "Practitioner/martin?x=1", "A" * 80 + "/1",
)
CODES = (
    "active", "inactive", "booked", "free", "busy", "busy-unavailable", "entered-in-error",
    "requested", "off", "error", "rest-hook", "websocket", "email", "phone", "male", "other",
    "unknown", "IDNPS", "INTRN", "PUBLIC", "PRO", "SNP", "CPTS", "PATIENT", "true", "1", "",
    " ", "Booked", "proposed", "fulfilled", "cancelled", "noshow", "x" * 300,
)
SYSTEMS = (IDNPS, SAS_SOURCE, "urn:oid:1.2.250.1.71.4.2.2", ID_TYPES, "urn:example:ipp",
           sas_data.R314, "http://finess.sante.gouv.fr", "", "urn:oid:", "not a uri", "|")
STRINGS = (
    "", " ", "null", "true", "0", "-1", "²", "١٢", "Hélène", "e\u0301", "ß" * 3, "😀",
    "a\x00b", "\x00", "\\", "%", "_", "'; DROP TABLE resources; --", "<script>", "\u202e",
    "line\nbreak", "tab\tin", "a,b", "a|b", "a\\,b", "$", "*", "..", "/", "?", "#", "&", "=",
    "x" * 256, "é" * 513, "810000000017", "10000000025", "691234567", REGULATOR_ID,
    "regulateur@sas.example", "not-an-email", "https://agenda.example/hook",
    "application/fhir+json", "text/plain", *DATES[:6], *REFERENCES[:4],
)
ELEMENT_NAMES = (
    "resourceType", "id", "meta", "text", "contained", "extension", "modifierExtension",
    "identifier", "active", "status", "name", "family", "given", "telecom", "system", "value",
    "use", "code", "coding", "display", "reference", "type", "start", "end", "period",
    "schedule", "actor", "participant", "slot", "criteria", "channel", "endpoint", "payload",
    "header", "source", "profile", "security", "tag", "versionId", "lastUpdated", "url",
    "valueReference", "valueString", "birthDate", "address", "city", "line", "postalCode",
    "planningHorizon", "serviceType", "specialty", "practitioner", "location", "organization",
    "_birthDate", "_active", "fhir_comments", "div", "entry", "request", "method", "resource",
    "fullUrl", "ifMatch", "ifNoneExist", "__proto__", "",
)


@lru_cache(maxsize=32)
def element_names(resource_type: str) -> tuple[str, ...]:
    """The JSON element names of a resource type (from the fhir.resources models)."""
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource_type)
    return tuple(sorted(f.alias for f in model.model_fields.values() if f.alias))


def keys(resource_type: Any = None) -> st.SearchStrategy[str]:
    known = resource_type in SUPPORTED_TYPES
    names = ELEMENT_NAMES + (element_names(resource_type) if known else ())
    return st.one_of(st.sampled_from(names), st.text(max_size=12))


huge_strings = st.builds(lambda char, size: char * size,
                         st.sampled_from(["a", "é", "😀", " ", "\x00", "9"]),
                         st.integers(min_value=1_000, max_value=300_000))
leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Co", "Cc", "Mn", "So"]), max_size=8),
    st.sampled_from(STRINGS), st.sampled_from(DATES), st.sampled_from(CODES),
)
fhirish_objects = st.one_of(
    st.builds(lambda r: {"reference": r}, st.sampled_from(REFERENCES)),
    st.builds(lambda s, v: {"system": s, "value": v}, st.sampled_from(SYSTEMS),
              st.sampled_from(STRINGS)),
    st.builds(lambda s, c: {"coding": [{"system": s, "code": c}]}, st.sampled_from(SYSTEMS),
              st.sampled_from(CODES)),
    st.builds(lambda a, b: {"start": a, "end": b}, st.sampled_from(DATES),
              st.sampled_from(DATES)),
    st.builds(lambda f, g: {"family": f, "given": [g]}, st.sampled_from(STRINGS),
              st.sampled_from(STRINGS)),
    st.builds(lambda u, v: {"url": u, "valueString": v}, st.sampled_from(STRINGS),
              st.sampled_from(STRINGS)),
    st.builds(lambda r: {"url": OPERATOR, "valueReference": {"reference": r}},
              st.sampled_from(REFERENCES)),
    st.builds(lambda s: {"source": s}, st.sampled_from([SAS_SOURCE, "", "x"])),
)


def json_values(resource_type: str | None = None) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(leaves, fhirish_objects),
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(keys(resource_type), children, max_size=5)),
        max_leaves=24)


def nest(depth: int, leaf: Any, shape: str) -> Any:
    """`leaf` nested `depth` levels deep, as lists, objects or FHIR extensions."""
    node = leaf
    for level in range(depth):
        kind = shape if shape != "mixed" else ("list", "object", "extension")[level % 3]
        if kind == "list":
            node = [node]
        elif kind == "object":
            node = {"a": node}
        else:
            node = {"url": "urn:example:x", "extension": [node]}
    return node


deep_values = st.builds(nest, st.integers(min_value=1, max_value=70),
                        st.one_of(leaves, fhirish_objects),
                        st.sampled_from(["list", "object", "extension", "mixed"]))


def any_value(resource_type: str | None = None) -> st.SearchStrategy[Any]:
    return st.one_of(json_values(resource_type), deep_values, huge_strings,
                     st.sampled_from(STRINGS))


@st.composite
def random_bodies(draw: st.DrawFn, resource_type: str) -> Any:
    """A random JSON document, usually an object claiming to be a `resource_type`."""
    if draw(st.integers(0, 9)) == 0:
        return draw(any_value())
    body: dict[str, Any] = draw(st.dictionaries(keys(resource_type), any_value(resource_type),
                                                max_size=8))
    kind = draw(st.integers(0, 9))
    if kind < 7:
        body["resourceType"] = resource_type
    elif kind < 9:
        body["resourceType"] = draw(st.one_of(st.sampled_from(SUPPORTED_TYPES),
                                              any_value()))
    return body


typed_bodies = st.sampled_from(SUPPORTED_TYPES).flatmap(
    lambda t: random_bodies(t).map(lambda document: (t, document)))


# -- templates and mutations -----------------------------------------------------------------

def regulator(tech_id: str, email: str, *, national: str | None = None,
              resource_id: str | None = None, active: bool = True,
              family: str = "Loridon") -> Resource:
    identifiers = [{"system": SAS_SOURCE, "value": tech_id,
                    "type": {"coding": [{"system": ID_TYPES, "code": "INTRN"}]}}]
    if national:
        identifiers.append({"system": IDNPS, "value": national,
                            "type": {"coding": [{"system": ID_TYPES, "code": "IDNPS"}]}})
    resource: Resource = {
        "resourceType": "Practitioner", "meta": {"source": SAS_SOURCE},
        "identifier": identifiers, "active": active,
        "name": [{"family": family, "given": ["Sébastien"]}],
        "telecom": [{"system": "email", "value": email}],
    }
    if resource_id:
        resource["id"] = resource_id
    return resource


def appointment(operator: str = "Practitioner/reg-1") -> Resource:
    return {
        "resourceType": "Appointment", "status": "booked",
        "extension": [{"url": OPERATOR, "valueReference": {"reference": operator}}],
        "start": "2030-03-10T09:00:00+01:00", "end": "2030-03-10T09:20:00+01:00",
        "slot": [{"reference": "Slot/m-a-public"}],
        "participant": [{"actor": {"reference": "Practitioner/martin"}, "status": "accepted"},
                        {"actor": {"reference": "Patient/pat-1"}, "status": "accepted"}],
    }


def template(resource_type: str) -> Resource:
    """A small valid resource of each writable type (AuditEvent is refused anyway)."""
    templates: dict[str, Resource] = {
        "Practitioner": {
            "resourceType": "Practitioner", "active": True,
            "identifier": [{"system": IDNPS, "value": "810000000111"}],
            "name": [{"family": "Martin", "given": ["Claire"], "prefix": ["Dr"]}],
            "telecom": [{"system": "phone", "value": "0478000000"}],
            "address": [{"line": ["1 rue X"], "city": "Lyon", "postalCode": "69003"}]},
        "PractitionerRole": {
            "resourceType": "PractitionerRole", "active": True,
            "practitioner": {"reference": "Practitioner/martin"},
            "organization": {"reference": "Organization/org-finess"},
            "location": [{"reference": "Location/loc-a"}],
            "code": [{"coding": [{"system": "urn:example:role", "code": "doctor"}]}],
            "period": {"start": "2020-01-01"}},
        "Location": {
            "resourceType": "Location", "status": "active", "name": "Cabinet",
            "managingOrganization": {"reference": "Organization/org-finess"},
            "address": {"line": ["3 rue Garibaldi"], "city": "Lyon", "postalCode": "69006"}},
        "Organization": {
            "resourceType": "Organization", "active": True, "name": "Centre de santé",
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "690000002"}]},
        "HealthcareService": {
            "resourceType": "HealthcareService", "active": True, "name": "Consultation",
            "providedBy": {"reference": "Organization/org-finess"}},
        "Schedule": {
            "resourceType": "Schedule", "active": True,
            "actor": [{"reference": "Practitioner/martin"}, {"reference": "Location/loc-a"}],
            "planningHorizon": {"start": "2030-03-10T08:00:00+01:00",
                                "end": "2030-03-10T18:00:00+01:00"}},
        "Slot": sas_data.sas_slot("ignored", "sch-martin-a", "2030-03-10T10:00:00+01:00",
                                  "2030-03-10T10:20:00+01:00", "PUBLIC"),
        # No slot: a slot is booked once (app/scheduling), and templates are written often.
        "Appointment": {k: v for k, v in appointment().items() if k != "slot"},
        "Device": {"resourceType": "Device", "status": "active",
                   "deviceName": [{"name": "Échographe", "type": "user-friendly-name"}]},
        "RelatedPerson": {"resourceType": "RelatedPerson", "active": True,
                          "patient": {"reference": "Patient/pat-1"},
                          "name": [{"family": "Durand", "given": ["Marie"]}]},
        "Patient": {
            "resourceType": "Patient", "name": [{"family": "Durand", "given": ["Paul"]}],
            "birthDate": "1980-05-17", "gender": "male",
            "generalPractitioner": [{"reference": "Practitioner/martin"}]},
        "Subscription": {
            "resourceType": "Subscription", "status": "requested", "reason": "fuzz",
            "criteria": "Appointment?status=booked",
            "channel": {"type": "rest-hook", "endpoint": "https://agenda.example/hook",
                        "payload": FHIR_JSON}},
        "AuditEvent": {
            "resourceType": "AuditEvent", "recorded": "2030-03-10T09:00:00Z",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                     "code": "110110"},
            "agent": [{"requestor": True, "name": "fuzz"}],
            "source": {"observer": {"display": "fuzz"}}},
    }
    resource = templates[resource_type]
    resource.pop("id", None)
    return resource


Path = tuple[str | int, ...]


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _get(root: Any, path: Path) -> Any:
    node = root
    for step in path:
        node = node[step]
    return node


def _parent(root: Any, path: Path) -> Any:
    return _get(root, path[:-1])


DATE_KEYS = {"start", "end", "birthDate", "recorded", "lastUpdated", "date", "created"}
CODE_KEYS = {"status", "code", "system", "use", "gender", "type", "payload", "mode"}


@st.composite
def mutate(draw: st.DrawFn, resource: Resource) -> Any:
    """One random change somewhere in `resource` (a deep copy is changed)."""
    root = copy.deepcopy(resource)
    op = draw(st.sampled_from(["drop", "replace", "duplicate", "code", "date", "date",
                               "date", "reference", "reference", "add", "retype", "urn"]))
    paths = [p for p in _paths(root) if p]
    wanted = {"code": CODE_KEYS, "date": DATE_KEYS, "reference": {"reference"},
              "urn": {"reference"}}.get(op)
    if wanted is not None:
        paths = [p for p in paths if p[-1] in wanted] or paths
    if op == "add":
        objects = [p for p in _paths(root) if isinstance(_get(root, p), dict)]
        target = _get(root, draw(st.sampled_from(objects)))
        target[draw(keys(root.get("resourceType")))] = draw(st.one_of(leaves, fhirish_objects))
        return root
    if not paths:
        return root
    path = draw(st.sampled_from(paths))
    parent, last = _parent(root, path), path[-1]
    value = parent[last]
    if op == "drop":
        del parent[last]
    elif op == "replace":
        parent[last] = draw(st.one_of(leaves, fhirish_objects, json_values()))
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(int(last), copy.deepcopy(value))
        else:
            parent[last] = (value + value) if isinstance(value, list) else [value, value]
    elif op == "code":
        parent[last] = draw(st.sampled_from(CODES))
    elif op == "date":
        parent[last] = draw(st.one_of(st.sampled_from(DATES), dates()))
    elif op in {"reference", "urn"}:
        pool = URNS if op == "urn" else REFERENCES
        parent[last] = draw(st.sampled_from(pool))
    else:  # retype
        parent[last] = draw(st.sampled_from([str(value), [value], {"value": value}, 1, True,
                                             None, 1.5, "", []]))
    return root


criteria_strings = st.deferred(lambda: st.one_of(
    st.builds(lambda t, q: f"{t}?{q}", st.sampled_from(SUPPORTED_TYPES),
              st.sampled_from(SUPPORTED_TYPES).flatmap(query_strings)),
    st.sampled_from(["Appointment", "Appointment?", "?status=booked", "Slot?status",
                     "Foo?x=1", "Subscription?status=active", "AuditEvent?action=C",
                     "Appointment?date=2026-13-45", "Appointment?date=9999",
                     "Appointment?status:missing=maybe", "Slot?schedule.actor.name=x",
                     "Appointment?_count=0", "Appointment?_sort=-date", "/Appointment?x"]),
    st.text(max_size=40)))


@st.composite
def templates(draw: st.DrawFn) -> Resource:
    """A valid resource, or a regulator account or Subscription with random parts."""
    kind = draw(st.sampled_from([*SUPPORTED_TYPES, "Regulator", "Regulator", "Subscription"]))
    if kind == "Regulator":
        tech = str(draw(st.uuids()))
        national = draw(st.one_of(st.none(), st.from_regex(r"8[0-9]{11}", fullmatch=True)))
        email = draw(st.one_of(st.sampled_from(["regulateur@sas.example",
                                                f"{tech[:8]}@sas.example",
                                                f"{'r' * 320}@sas.example"]),
                               st.emails(), st.text(max_size=20)))
        resource = regulator(tech, email, national=national, active=draw(st.booleans()))
        resource["name"][0]["family"] = draw(st.one_of(st.just("Loridon"),
                                                       st.sampled_from(STRINGS)))
        return resource
    resource = template(kind)
    if kind == "Subscription":
        resource["criteria"] = draw(criteria_strings)
        channel = resource["channel"]
        channel["payload"] = draw(st.one_of(st.just(FHIR_JSON), st.none(),
                                            st.sampled_from(["application/json; charset=utf-8",
                                                             "application/fhir+xml", ""])))
        if channel["payload"] is None:
            del channel["payload"]
        if draw(st.booleans()):
            channel["header"] = draw(st.lists(st.sampled_from(
                ["Authorization: Bearer x", "X-Empty:", "no colon", ":", ""]), max_size=3))
        channel["endpoint"] = draw(st.sampled_from(
            ["https://agenda.example/hook", "http://127.0.0.1:9/x", "ftp://x", "", "hook"]))
    return resource


@st.composite
def mutated_resources(draw: st.DrawFn) -> Resource:
    resource = draw(templates())
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4]))):
        resource = draw(mutate(resource))
    return resource


# -- search queries --------------------------------------------------------------------------

MODIFIERS = ("not", "text", "missing", "exact", "contains", "identifier", "above", "below",
             "in", "of-type", "iterate", "Practitioner", "Patient", "Location", "Schedule",
             "Foo", "", ":", "missing:not")
CONTROL_VALUES: dict[str, st.SearchStrategy[str]] = {
    "_count": st.one_of(st.sampled_from(["0", "1", "2", "50", "1000", "1001", "-1", "²", "1.5",
                                         "", "abc", "99999999999999999999", " 1"]),
                        st.integers(min_value=-5, max_value=10**25).map(str)),
    "_offset": st.one_of(st.sampled_from(["0", "1", "-1", "²", "", "x",
                                          "99999999999999999999", "9223372036854775808"]),
                         st.integers(min_value=-5, max_value=10**25).map(str)),
    "_summary": st.sampled_from(["true", "false", "text", "data", "count", "TRUE", "", "x"]),
    "_total": st.sampled_from(["none", "estimate", "accurate", "x"]),
    "_format": st.sampled_from(["json", "application/fhir+json", "application/fhir json",
                                "xml", "html", "text/turtle", "", "application/json+fhir"]),
    "_pretty": st.sampled_from(["true", "false", "x"]),
    "_contained": st.sampled_from(["true", "false", "both"]),
}


def values_for(param_type: str) -> st.SearchStrategy[str]:
    text = st.text(st.characters(codec="utf-8"), max_size=12)
    token = st.one_of(st.sampled_from(CODES), text,
                      st.builds(lambda s, c: f"{s}|{c}", st.sampled_from(SYSTEMS),
                                st.one_of(st.sampled_from(CODES + STRINGS[:20]), text)),
                      st.sampled_from(["|", "|x", "x|", "a|b|c", f"{IDNPS}|810000000017",
                                       f"{IDNPS}|10000000025", "true", "false"]))
    date = st.one_of(st.builds(lambda p, d: p + d, st.sampled_from(DATE_PREFIXES),
                               st.sampled_from(DATES)),
                     st.builds(lambda p, d: p + d, st.sampled_from(DATE_PREFIXES), dates()))
    reference = st.one_of(st.sampled_from(REFERENCES), text)
    single = {"token": token, "uri": st.one_of(token, st.sampled_from(REFERENCES)),
              "string": st.one_of(st.sampled_from(STRINGS), text), "date": date,
              "reference": reference, "special": st.one_of(st.sampled_from(
                  ["martin", "pat-1", "m-a-public", "", "x" * 65, "a,b"]), text)}.get(
        param_type, text)
    return st.one_of(single, st.lists(single, min_size=2, max_size=4).flatmap(
        lambda vs: st.sampled_from([",".join(vs), ", ".join(vs), "\\,".join(vs)])),
        st.sampled_from(["", ",", "true", "false", "maybe"]))


@st.composite
def dates(draw: st.DrawFn) -> str:
    """A generated date/dateTime in one of FHIR's precisions, with or without an offset."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    precision = draw(st.sampled_from(["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M",
                                      "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]))
    text = f"{moment.year:04d}" + moment.strftime(precision)[4:]
    if "T" in precision:
        text += draw(st.sampled_from(["", "Z", "+01:00", "-14:00", "+14:00", " 01:00",
                                      "+99:99"]))
    return text


@st.composite
def chains(draw: st.DrawFn, resource_type: str) -> tuple[str, str]:
    """A chained key (`a:Type.b.c`) and a value for its last parameter."""
    parts, current = [], resource_type
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        references = [p for p in params_for(current).values() if p.type == "reference"]
        if not references:
            break
        param = draw(st.sampled_from(references))
        targets = [t for t in param.targets if t in SUPPORTED_TYPES] or [current]
        target = draw(st.sampled_from(targets))
        modifier = draw(st.sampled_from(["", target, target, "Foo", "missing"]))
        parts.append(f"{param.name}:{modifier}" if modifier else param.name)
        current = target
    last = draw(st.sampled_from(sorted(params_for(current).values(), key=lambda p: p.name)))
    modifier = draw(st.sampled_from(["", "", "", *MODIFIERS]))
    parts.append(f"{last.name}:{modifier}" if modifier else last.name)
    return ".".join(parts), draw(values_for(last.type))


INCLUDES = ("Slot:schedule", "Schedule:actor", "Schedule:actor:Practitioner",
            "PractitionerRole:practitioner", "PractitionerRole:location", "Appointment:actor",
            "Appointment:slot", "Slot:*", "*", "Slot", "Foo:bar", "Slot:status", "Slot:schedule:X",
            "Slot:schedule:Schedule:x", "", ":", "AuditEvent:entity")


@st.composite
def search_pairs(draw: st.DrawFn, resource_type: str) -> list[tuple[str, str]]:
    params = sorted(params_for(resource_type).values(), key=lambda p: p.name)
    pairs = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.sampled_from(["param", "param", "param", "chain", "control",
                                     "control", "random"]))
        if kind == "param":
            param = draw(st.sampled_from(params))
            modifier = draw(st.one_of(st.just(""), st.just(""), st.sampled_from(MODIFIERS),
                                      st.text(max_size=5)))
            key = f"{param.name}:{modifier}" if modifier else param.name
            pairs.append((key, draw(values_for(param.type))))
        elif kind == "chain":
            pairs.append(draw(chains(resource_type)))
        elif kind == "control":
            name = draw(st.sampled_from([*CONTROL_VALUES, "_sort", "_include", "_revinclude",
                                         "_elements", "_include:iterate", "_revinclude:iterate",
                                         "_include:recurse", "_include:bad"]))
            if name in CONTROL_VALUES:
                value = draw(CONTROL_VALUES[name])
            elif name == "_sort":
                names = [p.name for p in params] + ["_id", "x", ""]
                value = ",".join(draw(st.lists(st.builds(
                    lambda d, n: d + n, st.sampled_from(["", "-", "--"]),
                    st.sampled_from(names)), max_size=3)))
            elif name == "_elements":
                value = ",".join(draw(st.lists(keys(resource_type), max_size=4)))
            else:
                value = draw(st.one_of(st.sampled_from(INCLUDES), st.text(max_size=10)))
            pairs.append((name, value))
        else:
            pairs.append((draw(st.text(max_size=8)), draw(st.text(max_size=8))))
    return pairs


RAW_FRAGMENTS = ("%ff", "%00", "%", "%zz", "%C2%B2", "%2B01:00", "+01:00", "%E2%80%AE")


@st.composite
def encoded(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """A query string from pairs: percent-encoded, or with raw `+`, `:` and `|` left in."""
    safe = draw(st.sampled_from(["", ":|,/", ":|,/+"]))
    items = [f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in pairs]
    if draw(st.integers(0, 9)) == 0:
        items.append(draw(st.sampled_from(RAW_FRAGMENTS)) + "=" + draw(
            st.sampled_from(RAW_FRAGMENTS)))
    return "&".join(items)


def query_strings(resource_type: str) -> st.SearchStrategy[str]:
    return search_pairs(resource_type).flatmap(encoded)


class Search(NamedTuple):
    resource_type: str
    query: str
    prefer: str | None  # the Prefer header
    via: str  # GET | POST (_search with a form body) | history | history-instance | system


KNOWN_IDS = (sas_data.MARTIN, sas_data.BLANC, sas_data.ROUX, sas_data.BLANC[1:],
             sas_data.ROUX[1:], sas_data.UNKNOWN, "")


@st.composite
def sas_queries(draw: st.DrawFn) -> str:
    """The SAS slot search with random identifiers, windows and extra parameters."""
    ident = st.one_of(
        st.sampled_from(KNOWN_IDS).map(lambda v: f"{IDNPS}|{v}"), st.sampled_from(KNOWN_IDS),
        st.from_regex(r"[0-9]{0,13}", fullmatch=True).map(lambda v: f"{IDNPS}|{v}"),
        st.builds(lambda s, v: f"{s}|{v}", st.sampled_from(SYSTEMS), st.text(max_size=12)),
        st.text(max_size=12))
    identifiers = draw(st.lists(ident, max_size=30))
    low = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    high = low + timedelta(hours=draw(st.integers(min_value=-100, max_value=100)),
                           seconds=draw(st.sampled_from([0, 1, -1, 59])))
    offset = draw(st.sampled_from(["", "Z", "+01:00", "-14:00", " 01:00"]))
    pairs = [("_include:iterate", "Schedule:actor")]
    if draw(st.booleans()):
        pairs.insert(0, ("_include", "Slot:schedule"))
    for bound, prefix in ((low, "ge"), (high, "le")):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue  # missing bound
        if choice == 1:
            pairs.append(("start", draw(st.sampled_from(DATE_PREFIXES))
                          + draw(st.sampled_from(DATES))))
        else:
            pairs.append(("start", prefix + f"{bound:%Y-%m-%dT%H:%M:%S}" + offset))
    pairs.append(("schedule.actor:Practitioner.identifier",
                  draw(st.sampled_from([",", ", "])).join(identifiers)))
    status = draw(st.sampled_from(["free", "free", "busy", "", None, "free,busy"]))
    if status is not None:
        pairs.append(("status", status))
    pairs.extend(draw(search_pairs("Slot")) if draw(st.integers(0, 3)) == 0 else [])
    return draw(encoded(draw(st.permutations(pairs))))


prefers = st.one_of(st.none(), st.sampled_from(
    ["handling=lenient", "handling=strict", "handling=strict, return=minimal",
     "return=OperationOutcome", "handling=bogus", "handling", "=", ",,", "return=bogus"]))


@st.composite
def searches(draw: st.DrawFn) -> Search:
    via = draw(st.sampled_from(["GET", "GET", "GET", "POST", "history", "history-instance",
                                "system"]))
    prefer = draw(prefers)
    if draw(st.integers(0, 4)) == 0:
        return Search("Slot", draw(sas_queries()), prefer, draw(st.sampled_from(["GET",
                                                                                 "POST"])))
    resource_type = draw(st.sampled_from(SUPPORTED_TYPES))
    if via.startswith("history") or via == "system":
        pairs = draw(st.lists(st.tuples(
            st.sampled_from(["_since", "_count", "_offset", "_at", "x"]),
            st.one_of(st.sampled_from(DATES), dates(), CONTROL_VALUES["_count"],
                      CONTROL_VALUES["_offset"])), max_size=4))
        return Search(resource_type, draw(encoded(pairs)), prefer, via)
    return Search(resource_type, draw(query_strings(resource_type)), prefer, via)


# -- random requests -------------------------------------------------------------------------

class Raw(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # JSON value, bytes or None


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255,
                                    exclude_characters="\x7f"), max_size=40)
ACCEPTS = (FHIR_JSON, "application/json", "application/json+fhir", "application/fhir+xml",
           "application/xml", "text/html", "*/*", "application/*;q=0.1", "text/plain", ";;;",
           "application/fhir+json; fhirVersion=4.0", "image/png, text/xml;q=0.9", "", ",")
CONTENT_TYPES = (FHIR_JSON, "application/json", "application/json+fhir", "application/xml",
                 "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/fhir+json; charset=latin-1",
                 "", ";", "application/octet-stream")
IF_MATCHES = ('W/"1"', '"1"', "1", 'W/"2"', 'W/"²"', 'W/"-1"', 'W/""', "*", 'W/"1.0"',
              'W/"99999999999999999999"', "W/", 'W/"١"')
SEGMENTS = (*SUPPORTED_TYPES, "Foo", "metadata", "_history", "_search", "martin", "pat-1",
            "appt-1", "m-a-public", "1", "²", "%00", "%2F", "..", ".", "", "$everything",
            "$validate", "_history", "x" * 70, "%ff", "sub-slots", "99999999999999999999")


@st.composite
def raw_requests(draw: st.DrawFn) -> Raw:
    method = draw(st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH",
                                   "HEAD", "OPTIONS", "TRACE", "PROPFIND", "get"]))
    segments = draw(st.lists(st.one_of(
        st.sampled_from(SEGMENTS),
        st.text(st.characters(codec="utf-8"), max_size=10).map(lambda s: quote(s, safe=""))),
        max_size=5))
    path = "/fhir" + "".join(f"/{s}" for s in segments)
    if draw(st.booleans()):
        path += draw(st.sampled_from(["/", "//"]))
    if draw(st.booleans()):
        resource_type = draw(st.sampled_from(SUPPORTED_TYPES))
        path += "?" + draw(st.one_of(query_strings(resource_type), header_text.map(quote)))
    headers = {}
    for name, pool in (("Accept", ACCEPTS), ("Content-Type", CONTENT_TYPES),
                       ("If-Match", IF_MATCHES), ("Prefer", None), ("If-None-Exist", None),
                       ("User-Agent", None)):
        if draw(st.integers(0, 2)) == 0:
            continue
        if name == "Prefer":
            headers[name] = draw(st.one_of(prefers.filter(bool), header_text))
        elif name == "User-Agent":
            headers[name] = draw(st.one_of(header_text, st.just("x" * 300)))
        elif name == "If-None-Exist":
            headers[name] = draw(st.one_of(query_strings(draw(st.sampled_from(
                SUPPORTED_TYPES))), header_text))
        elif pool:
            headers[name] = draw(st.one_of(st.sampled_from(pool), header_text))
    body = draw(st.one_of(
        st.none(), mutated_resources(), random_bodies(draw(st.sampled_from(SUPPORTED_TYPES))),
        st.binary(max_size=64), st.sampled_from([b"", b"{", b"[]", b"null", b"\xff\xfe",
                                                 b'{"resourceType": "Patient"', b"NaN"]),
        st.just(bundle("transaction", entry("GET", "Slot")))))
    return Raw(method, path, headers, body)


# -- bundles ---------------------------------------------------------------------------------

entry_urls = st.one_of(
    st.sampled_from(SUPPORTED_TYPES),
    st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(SUPPORTED_TYPES),
              st.sampled_from(["martin", "pat-1", "appt-1", "new-1", "x" * 65, "", "²"])),
    st.sampled_from(SUPPORTED_TYPES).flatmap(
        lambda t: query_strings(t).map(lambda q: f"{t}?{q}")),
    st.sampled_from(["Patient/pat-1/_history/1", "Patient/pat-1/_history/x",
                     "Patient/pat-1/_history/²", "Patient/_search?name=x",
                     "Patient/pat-1/_history/99999999999999999999",
                     "http://localhost/fhir/Patient/pat-1", "http://elsewhere/fhir/Patient/1",
                     "/", "", "?", "Practitioner?identifier=" + quote(f"{SAS_SOURCE}|"
                                                                      + REGULATOR_ID),
                     "metadata", "_history", "Foo/1"]),
    st.text(max_size=20))


def requests_of_entries() -> st.SearchStrategy[Any]:
    methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD",
                                         "get", "OPTIONS"]), leaves)
    return st.one_of(
        st.fixed_dictionaries({"method": methods, "url": entry_urls}, optional={
            "ifNoneExist": st.one_of(st.sampled_from(SUPPORTED_TYPES).flatmap(query_strings),
                                     leaves),
            "ifMatch": st.one_of(st.sampled_from(IF_MATCHES), leaves)}),
        json_values())


def bundle_entries() -> st.SearchStrategy[Any]:
    resources = st.one_of(mutated_resources(), st.sampled_from(SUPPORTED_TYPES).flatmap(
        random_bodies), json_values())
    return st.one_of(
        st.fixed_dictionaries({"request": requests_of_entries()}, optional={
            "fullUrl": st.one_of(st.sampled_from(URNS), st.sampled_from(REFERENCES), leaves),
            "resource": resources}),
        any_value())


bundles = st.fixed_dictionaries(
    {"resourceType": st.one_of(st.just("Bundle"), st.just("Bundle"), st.just("Bundle"),
                               any_value()),
     "type": st.one_of(st.sampled_from(["batch", "transaction", "batch", "transaction",
                                        "collection", "searchset", "Batch"]), leaves)},
    optional={"entry": st.one_of(st.lists(bundle_entries(), max_size=6), any_value()),
              "id": leaves, "meta": st.one_of(fhirish_objects, leaves)})


# -- the tests -------------------------------------------------------------------------------

def _cleanup_subscriptions(fuzz: Fuzz, *sent: Any) -> None:
    """Delete the Subscriptions a case created (when what it `sent` names any), so that each
    case starts with the seed's only."""
    if sent and not any(b"Subscription" in (encode(item) or b"") for item in sent):
        return
    found = body_of(fuzz.send("GET", "/fhir/Subscription?_count=1000&_elements=id"))
    for item in (found or {}).get("entry", []):
        resource_id = item["resource"]["id"]
        if resource_id not in SEEDED_SUBSCRIPTIONS:
            fuzz.send("DELETE", f"/fhir/Subscription/{quote(resource_id, safe='')}")


def _url_id(body: Any, fallback: str) -> str:
    candidate = body.get("id") if isinstance(body, dict) else None
    return quote(candidate, safe="") if isinstance(candidate, str) and candidate else fallback


@settings(max_examples=examples(300), deadline=None, suppress_health_check=SUPPRESSED,
          derandomize=not EXPLORE, database=None)
@given(case=typed_bodies)
# Bugs found, kept as explicit cases: a non-object `meta` (AttributeError in
# Repository._with_server_meta), a primitive's `_element` holding JSON that is not an object
# (AttributeError inside fhir.resources, not caught by validate_structure), dates whose
# range leaves years 1..9999 once in UTC (OverflowError/ValueError in the indexer), and, on
# PostgreSQL only, a NUL character in an indexed string (psycopg DataError).
@example(case=("Patient", {"resourceType": "Patient", "meta": "x"}))
@example(case=("Practitioner", {"resourceType": "Practitioner", "_active": "null"}))
@example(case=("Patient", {"resourceType": "Patient", "birthDate": "0001-01-01"}))
@example(case=("Patient", {"resourceType": "Patient", "birthDate": "9999"}))
@example(case=("Patient", {"resourceType": "Patient", "name": [{"family": "a\x00b"}]}))
def test_random_bodies(fuzz: Fuzz, case: tuple[str, Any]) -> None:
    """Random JSON POSTed to /fhir/{type} and PUT to /fhir/{type}/{id}."""
    resource_type, document = case
    with fuzz.case("random_bodies"):
        fuzz.send("POST", f"/fhir/{resource_type}", document)
        fuzz.send("PUT", f"/fhir/{resource_type}/{_url_id(document, 'fuzz-put')}", document)


@settings(max_examples=examples(240), deadline=None, suppress_health_check=SUPPRESSED,
          derandomize=not EXPLORE, database=None)
@given(document=bundles)
# Bugs found, kept as explicit cases: Bundle parts of the wrong JSON type reach code that
# assumes their type (TypeError, AttributeError), and non-ASCII digits pass str.isdigit()
# then fail int().
@example(document={"resourceType": "Bundle", "type": "batch", "entry": 1})
@example(document=bundle("transaction", {"resource": "x",
                                       "request": {"method": "POST", "url": "Patient"}}))
@example(document=bundle("transaction", {"fullUrl": [1], "resource": {"resourceType": "Patient"},
                                       "request": {"method": "POST", "url": "Patient"}}))
@example(document=bundle("batch", {"resource": {"resourceType": "Patient", "id": "p"},
                                 "request": {"method": "PUT", "url": "Patient/p",
                                             "ifMatch": 1}}))
@example(document=bundle("batch", {"resource": {"resourceType": "Patient"},
                                 "request": {"method": "POST", "url": "Patient",
                                             "ifNoneExist": 1}}))
@example(document=bundle("batch", entry("GET", "Patient/pat-1/_history/²")))
def test_random_bundles(fuzz: Fuzz, document: Any) -> None:
    """Random batch and transaction Bundles POSTed to /fhir."""
    with fuzz.case("random_bundles"):
        try:
            fuzz.send("POST", "/fhir", document, {"Prefer": "return=representation"})
        finally:
            _cleanup_subscriptions(fuzz, document)


@settings(max_examples=examples(380), deadline=None, suppress_health_check=SUPPRESSED,
          derandomize=not EXPLORE, database=None)
@given(resource=mutated_resources(),
       how=st.sampled_from(["POST", "PUT", "conditional PUT", "If-None-Exist",
                            "transaction"]))
# Bugs found, kept as explicit cases: the regulator check reads `meta` before validation on
# conditional writes (AttributeError in regulators.is_regulator), dates outside years
# 1..9999 once in UTC in a Slot or a Period (OverflowError in the indexer), Subscriptions
# whose criteria parse but cannot be run (every later write of that type then fails: 400
# for a bad date, 500 for year 9999), and, on PostgreSQL only, regulator emails over 320
# and names over 255 characters (user account columns: StringDataRightTruncation).
@example(resource={"resourceType": "Practitioner", "meta": "x"}, how="If-None-Exist")
@example(resource={"resourceType": "Practitioner", "meta": "x"}, how="conditional PUT")
@example(resource={**template("Slot"), "start": "9999-12-31T23:59:59-12:00"}, how="POST")
@example(resource={**template("Schedule"), "planningHorizon": {"start": "0001-01-01"}},
         how="POST")
@example(resource={**template("Subscription"), "criteria": "Appointment?date=2026-13-45"},
         how="POST")
@example(resource={**template("Subscription"), "criteria": "Appointment?date=9999"},
         how="POST")
@example(resource=regulator(REGULATOR_ID[:-4] + "0001", "r" * 320 + "@sas.example"),
         how="POST")
@example(resource=regulator(REGULATOR_ID[:-4] + "0002", "x@sas.example", family="x" * 256),
         how="POST")
def test_mutated_resources(fuzz: Fuzz, resource: Resource, how: str) -> None:
    """Valid resources with random mutations, written every way the API allows."""
    with fuzz.case("mutated_resources"):
        resource_type = resource.get("resourceType")
        resource_type = resource_type if isinstance(resource_type, str) else "Patient"
        url = f"/fhir/{quote(resource_type, safe='')}"
        identifiers = resource.get("identifier")
        first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
        criteria = "identifier=" + quote(f"{first.get('system')}|{first.get('value')}"
                                         if isinstance(first, dict) else "urn:example:x|1")
        try:
            if how == "POST":
                response = fuzz.send("POST", url, resource)
            elif how == "PUT":
                response = fuzz.send("PUT", f"{url}/{_url_id(resource, str(uuid.uuid4()))}",
                                     resource)
            elif how == "conditional PUT":
                response = fuzz.send("PUT", f"{url}?{criteria}", resource)
            elif how == "If-None-Exist":
                response = fuzz.send("POST", url, resource, {"If-None-Exist": criteria})
            else:
                response = fuzz.send("POST", "/fhir", bundle(
                    "transaction",
                    entry("POST", resource_type, resource, full_url=URNS[0]),
                    entry("POST", "Appointment", {**appointment(),
                                                           "slot": [{"reference": URNS[0]}]},
                                   full_url=URNS[1])))
            if resource_type == "Subscription" and response.status_code in (200, 201):
                _subscription_followup(fuzz, resource)
        finally:
            if resource_type == "Subscription":
                _cleanup_subscriptions(fuzz)


def _subscription_followup(fuzz: Fuzz, subscription: Resource) -> None:
    """An accepted Subscription must not break the writes it watches: each write of the
    type its criteria name is matched against it, and must still succeed."""
    criteria = subscription.get("criteria")
    resource_type = criteria.strip().partition("?")[0] if isinstance(criteria, str) else ""
    if resource_type not in WRITABLE_TYPES:
        return
    response = fuzz.send("POST", f"/fhir/{resource_type}", template(resource_type))
    assert response.status_code == 201, (
        f"after the Subscription {criteria!r} was accepted, creating a valid {resource_type} "
        f"answered {response.status_code}: {_short(response.get_data(as_text=True))}")


@settings(max_examples=examples(520), deadline=None, suppress_health_check=SUPPRESSED,
          derandomize=not EXPLORE, database=None)
@given(search=searches())
# Bugs found, kept as explicit cases: dates whose range leaves years 1..9999 (OverflowError
# or ValueError in search and SAS date parsing, and in `ap`'s margin), offsets beyond 64-bit
# integers (OverflowError on SQLite, DataError on PostgreSQL), non-ASCII digits in
# _history's _count, and, on PostgreSQL only, NUL characters in search values (DataError).
@example(search=Search("Patient", "birthdate=9999", None, "GET"))
@example(search=Search("Patient", "birthdate=0001-01-01", None, "GET"))
@example(search=Search("Patient", "birthdate=ap9999-12-31", None, "GET"))
@example(search=Search("Patient", "birthdate=ap0100", None, "GET"))
@example(search=Search("Patient", "_offset=99999999999999999999", None, "GET"))
@example(search=Search("Patient", "_count=%C2%B2", None, "history"))
@example(search=Search("Patient", "_offset=99999999999999999999", None, "history"))
@example(search=Search("Patient", "_since=9999", None, "history"))
@example(search=Search("Slot", "_include:iterate=Schedule:actor&start=ge2030-03-10"
                       "&start=le9999&schedule.actor:Practitioner.identifier=x", None, "GET"))
@example(search=Search("Practitioner", "_id=%00", None, "GET"))
@example(search=Search("Practitioner", "_id=%00", None, "POST"))
def test_random_searches(fuzz: Fuzz, search: Search) -> None:
    """Random searches (SAS's included) and history queries, lenient and strict."""
    with fuzz.case("random_searches"):
        headers = {"Prefer": search.prefer} if search.prefer is not None else {}
        base = f"/fhir/{search.resource_type}"
        if search.via == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            fuzz.send("POST", f"{base}/_search", search.query.encode("utf-8"), headers)
        elif search.via == "history":
            fuzz.send("GET", f"{base}/_history?{search.query}", None, headers)
        elif search.via == "history-instance":
            fuzz.send("GET", f"{base}/martin/_history?{search.query}", None, headers)
        elif search.via == "system":
            fuzz.send("GET", f"/fhir/_history?{search.query}", None, headers)
        else:
            fuzz.send("GET", f"{base}?{search.query}", None, headers)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=SUPPRESSED,
          derandomize=not EXPLORE, database=None)
@given(request=raw_requests())
# Bugs found, kept as explicit cases: non-ASCII digits in If-Match and in a version pass
# str.isdigit() then fail int(), a version beyond the integer column (OverflowError on
# SQLite, DataError on PostgreSQL), and, on PostgreSQL only, a NUL character in a resource
# id (DataError).
@example(request=Raw("PUT", "/fhir/Patient/pat-1", {"If-Match": 'W/"²"'},
                     {"resourceType": "Patient", "id": "pat-1"}))
@example(request=Raw("GET", "/fhir/Patient/pat-1/_history/%C2%B2", {}, None))
@example(request=Raw("GET", "/fhir/Patient/pat-1/_history/99999999999999999999", {}, None))
@example(request=Raw("GET", "/fhir/Patient/%00", {}, None))
def test_random_requests(fuzz: Fuzz, request: Raw) -> None:
    """Random paths, methods, headers and bodies under /fhir."""
    with fuzz.case("random_requests"):
        try:
            fuzz.send(request.method, request.path, request.body, request.headers)
        finally:
            _cleanup_subscriptions(fuzz, request.path, request.body)


def test_fuzz_case_count(db_backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """At least 1,000 generated cases ran against this backend (printed with the split)."""
    counts = {name: CASES[(db_backend, name)] for name in FUZZ_TESTS}
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nfuzz [{db_backend}]: {total} cases "
              f"({', '.join(f'{name} {count}' for name, count in counts.items())})")
    if any((db_backend, name) in FAILED for name in FUZZ_TESTS):
        pytest.skip("a fuzz test failed: its case count stops at the failure")
    if not all(counts.values()):
        pytest.skip("not every fuzz test ran (selection with -k?)")
    if SCALE >= 1:
        assert total >= MIN_CASES_PER_BACKEND, counts
