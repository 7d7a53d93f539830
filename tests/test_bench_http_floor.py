"""The HTTP floor of the SAS benchmark replays the application's recorded answers exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.http_floor import HttpFloor, replayed_headers, save
from bench.run import Case, report

PATH = "/fhir/Slot?_include=Slot:schedule&start=ge2026-11-25T08:00:00%2B01:00"
HEADERS = [("Server", "gunicorn"), ("Date", "Wed, 25 Nov 2026 15:00:00 GMT"),
           ("Connection", "close"), ("Content-Type", "application/fhir+json; charset=utf-8"),
           ("Content-Length", "99"), ("Cache-Control", "no-store")]


def _call(app: HttpFloor, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.update(status=status, headers=headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_recorded_answers_are_replayed_byte_for_byte(tmp_path: Path) -> None:
    body = '{"resourceType":"Bundle","total":1,"entry":[{"é":"ü"}]}'.encode()
    save(tmp_path / "answers.json", HEADERS, {PATH: body})
    app = HttpFloor.from_file(tmp_path / "answers.json")

    status, headers, got = _call(app, {"RAW_URI": PATH, "PATH_INFO": "/fhir/Slot"})
    assert (status, got) == ("200 OK", body)
    assert headers == [("Content-Type", "application/fhir+json; charset=utf-8"),
                       ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))]
    # without gunicorn's RAW_URI: the path and the (still encoded) query string
    path, _, query = PATH.partition("?")
    assert _call(app, {"PATH_INFO": path, "QUERY_STRING": query})[2] == body


def test_unknown_paths_are_not_answered_with_a_body(tmp_path: Path) -> None:
    app = HttpFloor(replayed_headers(HEADERS), {PATH: b"{}"})
    assert _call(app, {"RAW_URI": "/fhir/Slot?other", "PATH_INFO": "/fhir/Slot"})[0] == (
        "404 Not Found")
    assert _call(app, {"RAW_URI": "/fhir/metadata", "PATH_INFO": "/fhir/metadata"})[0] == (
        "200 OK")


def test_report_compares_each_case_with_its_http_floor() -> None:
    app_case = Case("1 practitioner, 1 client", 1, 1, latencies_ms=[2.0] * 10,
                    wall_seconds=0.02)
    transport = Case("HTTP floor, 1 practitioner, 1 client", 1, 1, latencies_ms=[0.5] * 10,
                     wall_seconds=0.005, http_floor=True)
    floor = Case("floor, 1 practitioner", 1, 1, latencies_ms=[0.4] * 10, wall_seconds=0.004,
                 tool="floor")
    lines = report([app_case, transport, floor], {1: floor}, {(1, 1): transport}).splitlines()
    assert "| 5.00 | 4.00 | p95 ≤ 3× floor: NO |" in lines[2]
    assert lines[3].endswith("| 1.25 | 1.00 |  |")  # the HTTP floor: no target of its own
    assert lines[4].endswith("| 1.00 |  |  |")
