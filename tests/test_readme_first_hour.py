"""The README's "operator's first hour", run as written: the shell blocks between its
`first-hour` markers, in order, in one `bash -e` shell from the checkout, with the trial's
files in a temporary directory, a free port, and this run's database (both backends).

The blocks start a production-profile gunicorn (TLS, SAS mutual TLS) and a worker in the
background and stop them in their last block; the shell runs in a process group of its own,
ended whatever happens."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import REPO_ROOT
from tests.support.postgres import free_port

README = REPO_ROOT / "README.md"
SECTION = re.compile(r"<!-- first-hour:start -->(.*?)<!-- first-hour:end -->", re.S)
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)


def first_hour() -> list[str]:
    sections = SECTION.findall(README.read_text())
    assert len(sections) == 1, "README.md: one first-hour section expected"
    blocks = SHELL_BLOCK.findall(sections[0])
    assert len(blocks) >= 5, "README.md: the first-hour section lost its shell blocks"
    return blocks


def test_the_section_is_found_and_written_for_a_shell() -> None:
    blocks = first_hour()
    assert any("sas-selftest" in block for block in blocks)
    assert blocks[-1].startswith("kill ")  # the trial stops what it started


@pytest.fixture
def trial_database(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'trial.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database("first_hour", exist_ok=True))


def test_the_operators_first_hour_runs_as_written(trial_database: str, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(first_hour())
    keep = {k: v for k, v in os.environ.items() if not k.startswith(
        ("SECURITY_", "FHIR_", "PUBLIC_WEB", "SECRET_", "PROMETHEUS_", "LOG_", "OAUTH_",
         "SAS_", "CLIENT_", "TLS_", "GUNICORN_", "ADMIN_"))}
    trial = tmp_path / "trial"
    environment = {**keep, "TRIAL": str(trial), "PORT": str(free_port()),
                   "DATABASE_URL": trial_database, "HOME": str(tmp_path),
                   # The self-test's 1 s rule measures the machine, not the README.
                   "SAS_SELFTEST_MAX_SECONDS": "30"}
    process = subprocess.Popen(["bash", "-c", script], cwd=REPO_ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=420)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # anything the script left running
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in trial.glob("*.log")) if trial.exists() else ""
    assert process.returncode == 0, f"{output[-8000:]}\n{logs}"
    assert '"status":"ready"' in output
    assert re.search(r"^[1-9]\d* free slots; https://localhost:\d+/agenda/", output, re.M)
    assert "1 ['Practitioner']" in output  # the OAuth client reads the directory
    assert re.search(r"^[1-9]\d* \['Schedule'", output, re.M)  # and the agendas
    assert re.search(r"Account #\d+ created: admin@example.fr \(administrator\)", output)
    assert re.search(r"https://localhost:\d+/reinitialiser/\S+", output)
    assert "fhir_agenda_http_requests_total{" in output
    assert "[RÉUSSI   ] tls-versions" in output and "[RÉUSSI   ] mtls-required" in output
    assert "[RÉUSSI   ] regulator-deactivate" in output
    assert "conforme sur les points testés" in output
