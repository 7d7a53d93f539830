"""`fhir-agenda sas-selftest` as a vendor runs it: against the server `make run` starts
(gunicorn, development profile, demo data) every rule holds; against a deliberately broken
server each broken rule is reported, and the exit status says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask import Flask

from app.cli import load_demo_command
from app.ops.selftest import bundle_rules, searches
from app.ops.selftest.report import RULES
from tests.support.broken_sas import KNOWN, BrokenServer
from tests.support.live_server import REPO_ROOT

SELFTEST = [str(Path(sys.executable).parent / "fhir-agenda"), "sas-selftest"]
# fixtures/demo: a practitioner sharing slots with a CPTS, and two SOS Médecins associations.
DEMO_CPTS_MEMBER = "810007890121"
DEMO_SOS = ("378901234500018", "382345671000016")


def selftest(*args: str) -> tuple[int, str]:
    result = subprocess.run([*SELFTEST, *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def statuses(output: str) -> dict[str, str]:
    report: dict[str, Any] = json.loads(output)
    return {item["rule"]: item["status"] for item in report["results"]}


def test_the_make_run_server_passes_every_rule(app: Flask, live_server: str) -> None:
    # `make run`: the demo data on the server's database, the development profile.
    assert app.test_cli_runner().invoke(load_demo_command).exit_code == 0
    code, output = selftest("--base", live_server, "--allow-http", "--json", "--lang", "en",
                            "--max-seconds", "30",  # timing is not what this test is about
                            "--cpts", DEMO_CPTS_MEMBER, *(f"--sos={s}" for s in DEMO_SOS))
    assert code == 0, output
    found = statuses(output)
    assert set(found) == set(RULES)
    assert {rule for rule, status in found.items() if status == "fail"} == set()
    passed = {rule for rule, status in found.items() if status == "pass"}
    assert passed >= {"metadata", "ps-identifiers", "ps-search", "ps-timing", "ps-multi",
                      *(rule for rule, _ in bundle_rules.BUNDLE_RULES), "rule-25",
                      "rule-72h", "booking-link", "cpts-search", "sos-search",
                      "regulator-create", "regulator-duplicate",
                      "regulator-invalid", "regulator-update", "regulator-deactivate"}
    # http: transport warned (accepted by --allow-http), TLS not testable.
    assert found["transport-https"] == "warn"
    assert {found[r] for r in ("tls-versions", "tls-certificate", "mtls-required")} == {"skip"}
    # The deployment answers the kit's `Accept: application/json+fhir` in that media type,
    # which the kit only warns about.
    assert found["ps-content-type"] == "warn"


def test_a_broken_server_has_each_broken_rule_reported(tmp_path: Path) -> None:
    with BrokenServer() as server:
        code, output = selftest("--base", server.base, "--json", "--cpts", KNOWN[0])
        french_code, french = selftest("--base", server.base, "--no-regulator")
    assert code == 1 and french_code == 1
    found = statuses(output)
    failed = {rule for rule, status in found.items() if status == "fail"}
    assert failed == {
        "transport-https", "metadata", "ps-timing", "ps-profiles", "ps-slots",
        "ps-references", "ps-practitioner", "ps-structure", "ps-self-link",
        "ps-example-systems", "ps-multi", "rule-25", "rule-72h", "booking-link",
        "regulator-duplicate", "regulator-invalid", "regulator-update",
        "regulator-deactivate", "cpts-search"}
    assert found["ps-total"] == found["ps-content-type"] == "warn"
    details = {item["rule"]: item["detail_en"] for item in json.loads(output)["results"]}
    assert "fhirVersion '3.0.2'" in details["metadata"]
    assert "status 'busy' instead of free" in details["ps-slots"]
    assert "starts before now" in details["ps-slots"]
    assert "expected an absolute URL with a query" in details["booking-link"]
    assert "26 identifiers: HTTP 200" in details["rule-25"]
    assert "73 h window: HTTP 200" in details["rule-72h"]
    assert "the same account posted twice: HTTP 201" in details["regulator-duplicate"]
    assert "ms (limit 1 s" in details["ps-timing"]
    assert "https://example.com/ids" in details["ps-example-systems"]
    # The French report, as printed by default.
    assert "[ÉCHEC    ] rule-25" in french and "Règle des 25 identifiants" in french
    assert "NON CONFORME" in french
    assert "[NON TESTÉ] regulator-create" in french


def test_the_searches_are_written_as_the_kit_writes_them() -> None:
    search = searches.ps_search(["810003456786", "0696012345"])
    parts = search.url.removeprefix("Slot?").split("&")
    assert parts[:3] == [
        "_include=Slot:schedule", "_include:iterate=Schedule:actor",
        "schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1%7C810003456786,"
        "urn:oid:1.2.250.1.71.4.2.1%7C0696012345"]
    assert parts[3].startswith("start=ge") and parts[4].startswith("start=le")
    assert parts[4].endswith("T23:59:59.000%2B01:00") or parts[4].endswith(
        "T23:59:59.000%2B02:00")  # J+2, end of day, Paris offset encoded
    assert parts[5] == "status=free"
