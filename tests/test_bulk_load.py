"""Bulk load (NDJSON, app/fhir/bulk_load.py) and the atomicity of large writes: a file or a
1,000-entry transaction is written whole or not at all — a rejected line, an invalid entry,
a process killed midway — and every rejected line is reported with its number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from app.storage.schema import resources
from tests.conftest import TEST_BASE_URL
from tests.factories import (
    FHIR_JSON,
    assert_outcome,
    body,
    bundle,
    entry,
    practitioner,
    schedule,
    search,
    send,
    slot,
)
from tests.support.live_server import REPO_ROOT

NDJSON = "application/fhir+ndjson"
Resource = dict[str, Any]


def ndjson(*lines: Resource | str) -> bytes:
    return b"\n".join(json.dumps(line).encode() if isinstance(line, dict) else line.encode()
                      for line in lines) + b"\n"


def agenda_lines(prefix: str, slots: int) -> list[Resource]:
    """A practitioner, his Schedule and `slots` quarter-hour Slots; the Schedule comes
    before the Practitioner it names (references forward in the file are fine)."""
    lines: list[Resource] = [
        schedule(f"Practitioner/{prefix}-pr", value=f"{prefix}-agenda", id=f"{prefix}-sch"),
        practitioner(f"8100{zlib.crc32(prefix.encode()) % 10**7:07d}", resource_id=f"{prefix}-pr"),
    ]
    for n in range(slots):
        minute = 8 * 60 + 15 * n
        day, minute = 2 + minute // (24 * 60), minute % (24 * 60)
        start = f"2030-12-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00+01:00"
        end_minute = minute + 15
        end = f"2030-12-{day + end_minute // 1440:02d}T{end_minute % 1440 // 60:02d}:" \
              f"{end_minute % 60:02d}:00+01:00"
        lines.append(slot(f"Schedule/{prefix}-sch", start=start, end=end,
                          id=f"{prefix}-s{n}"))
    return lines


def post_ndjson(client: Any, data: bytes) -> Any:
    return client.post("/fhir", data=data, headers={"Content-Type": NDJSON,
                                                    "Accept": FHIR_JSON})


def count(engine: Engine, resource_type: str, prefix: str = "") -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(resources).where(
            resources.c.res_type == resource_type, resources.c.res_id.like(f"{prefix}%"),
            resources.c.deleted.is_(False))).scalar_one()


def table_counts(engine: Engine) -> dict[str, int]:
    tables = ["resources", "resource_versions", "search_token", "search_date",
              "search_reference", "sas_slot", "outbox"]
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


# -- POST /fhir with NDJSON -----------------------------------------------------------------

def test_an_ndjson_file_is_loaded_whole_and_audited(client: Any, engine: Engine) -> None:
    response = post_ndjson(client, ndjson(*agenda_lines("a", 30)))
    outcome = body(response)
    assert response.status_code == 200, outcome
    assert outcome["issue"][0]["severity"] == "information"
    assert outcome["issue"][0]["diagnostics"] == "32 resources loaded from 32 lines"
    assert count(engine, "Slot", "a-") == 30
    found = search(client, "Slot", "schedule=Schedule/a-sch&_count=100")
    assert found["total"] == 30
    assert {e["resource"]["start"] for e in found["entry"]} >= {"2030-12-02T08:00:00+01:00"}
    # Audited like any write: one AuditEvent per interaction, one entity per version.
    audit = search(client, "AuditEvent", "_count=10")
    entities = [e["what"]["reference"] for a in audit["entry"]
                for e in a["resource"].get("entity", [])]
    assert "Slot/a-s29/_history/1" in entities and "Practitioner/a-pr/_history/1" in entities


def test_a_reload_updates_what_it_loaded(client: Any, engine: Engine) -> None:
    lines = agenda_lines("b", 3)
    assert post_ndjson(client, ndjson(*lines)).status_code == 200
    lines[2]["status"] = "busy"
    assert post_ndjson(client, ndjson(*lines)).status_code == 200
    slot_0 = body(client.get("/fhir/Slot/b-s0"))
    assert slot_0["status"] == "busy" and slot_0["meta"]["versionId"] == "2"
    assert body(client.get("/fhir/Slot/b-s1"))["meta"]["versionId"] == "1"  # unchanged: no-op


def test_every_rejected_line_is_reported_and_nothing_is_loaded(client: Any,
                                                               engine: Engine) -> None:
    before = table_counts(engine)
    lines: list[Resource | str] = list(agenda_lines("c", 10))
    lines[4] = {**lines[4], "status": "maybe"}  # not a SlotStatus code
    lines.insert(7, "{not json")
    lines.insert(9, '["an", "array"]')
    lines.append(slot("Schedule/nowhere", id="c-orphan"))  # a reference nothing resolves
    response = post_ndjson(client, ndjson(*lines))
    outcome = assert_outcome(response, 422)
    text_of = [issue["diagnostics"] for issue in outcome["issue"]]
    assert any(t.startswith("line 5: ") and "maybe" in t for t in text_of), text_of
    assert any(t.startswith("line 8: not JSON") for t in text_of), text_of
    assert any(t.startswith("line 10: a line must be one FHIR resource") for t in text_of)
    assert text_of[-1] == "3 of 15 lines rejected; nothing was loaded"
    assert {"line[5]", "line[8]", "line[10]"} <= {
        e for issue in outcome["issue"] for e in issue.get("expression", [])}
    assert table_counts(engine) == before

    # Once the lines are fixed, the unresolved reference is what remains, for the file.
    fixed = [line for line in agenda_lines("c", 10)] + [slot("Schedule/nowhere", id="c-x")]
    outcome = assert_outcome(post_ndjson(client, ndjson(*fixed)), 422)
    assert "Schedule/nowhere" in json.dumps(outcome)
    assert table_counts(engine) == before


def test_an_empty_or_oversized_upload_is_refused(client: Any) -> None:
    assert_outcome(post_ndjson(client, b"\n\n"), 400)


# -- a 1,000-entry transaction ---------------------------------------------------------------

def test_one_invalid_entry_of_a_thousand_changes_nothing(client: Any, engine: Engine) -> None:
    assert post_ndjson(client, ndjson(*agenda_lines("t", 0))).status_code == 200
    before = table_counts(engine)
    entries = [entry("POST", "Slot", slot("Schedule/t-sch", start=f"2030-11-{1 + n // 40:02d}"
                                          f"T{8 + n % 40 // 4:02d}:{n % 4 * 15:02d}:00+01:00",
                                          end=f"2030-11-{1 + n // 40:02d}T{8 + n % 40 // 4:02d}"
                                          f":{n % 4 * 15 + 14:02d}:00+01:00"))
               for n in range(1000)]
    entries[737]["resource"]["start"] = "le 5 décembre"
    response = send(client, "POST", "", bundle("transaction", *entries))
    outcome = assert_outcome(response, 422, "invalid", "value", "structure")
    assert "Bundle.entry[737]" in json.dumps(outcome)
    assert table_counts(engine) == before

    del entries[737]
    response = send(client, "POST", "", bundle("transaction", *entries))
    assert response.status_code == 200, body(response)
    assert len(body(response)["entry"]) == 999
    assert count(engine, "Slot") == 999


# -- the command line, and a load killed midway ------------------------------------------------

def _cli(database_url: str, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "FHIR_BASE_URL": TEST_BASE_URL,
           "SECURITY_PROFILE": "development"}
    # This checkout's application (the console script may belong to another checkout).
    command = [sys.executable, "-c", "from app.cli import main; main()", *args]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def test_the_cli_reports_rejected_lines(app: Any, database_url: str, engine: Engine,
                                        tmp_path: Path) -> None:
    good, bad = tmp_path / "good.ndjson", tmp_path / "bad.ndjson"
    good.write_bytes(ndjson(*agenda_lines("g", 5)))
    lines: list[Resource | str] = list(agenda_lines("h", 5))
    lines[3] = {**lines[3], "end": "soon"}
    bad.write_bytes(ndjson(*lines))
    process = _cli(database_url, "load", str(good), str(bad))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)
    assert f"{good}: 7 resources loaded" in out.decode()
    assert f"{bad}: line 4: " in err.decode() and "1 of 7 lines rejected" in err.decode()
    assert count(engine, "Slot", "g-") == 5 and count(engine, "Slot", "h-") == 0


def _writing_started(engine: Engine, database_url: str) -> bool:
    """Whether another connection holds a write transaction (the loader's)."""
    with engine.connect() as conn:
        if database_url.startswith("sqlite"):
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except Exception:  # noqa: BLE001 - "database is locked": the loader writes
                return True
            conn.exec_driver_sql("ROLLBACK")
            return False
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar_one() > 0


def test_a_load_killed_midway_leaves_nothing(app: Any, database_url: str, engine: Engine,
                                             tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(ndjson(*[line for p in range(12) for line in agenda_lines(f"k{p}", 900)]))
    process = _cli(database_url, "load", str(path), start_new_session=True)
    deadline = time.monotonic() + 60
    while not _writing_started(engine, database_url):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # into the file: several checkpoints written, not committed
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    assert count(engine, "Slot", "k") == 0 and count(engine, "Practitioner", "k") == 0

    process = _cli(database_url, "load", str(path))
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert count(engine, "Slot", "k") == 12 * 900
    assert count(engine, "Schedule", "k") == 12


def test_references_are_checked_across_checkpoints(client: Any, engine: Engine,
                                                   monkeypatch: Any) -> None:
    """Chunks of 3 lines: a reference forward into a later chunk resolves; one that nothing
    in the file resolves is refused, even when its chunk's checkpoint has long passed."""
    from app.fhir import bulk_load

    monkeypatch.setattr(bulk_load, "CHECKPOINT_LINES", 3)
    lines = agenda_lines("x", 8)
    forward = [*lines[2:], *lines[:2]]  # the Slots first, their Schedule in the last chunk
    assert post_ndjson(client, ndjson(*forward)).status_code == 200
    assert count(engine, "Slot", "x-") == 8

    orphan = [slot("Schedule/nowhere", id="y-orphan"), *agenda_lines("y", 8)]
    outcome = assert_outcome(post_ndjson(client, ndjson(*orphan)), 422)
    assert "Schedule/nowhere" in json.dumps(outcome)
    assert count(engine, "Slot", "y-") == 0
