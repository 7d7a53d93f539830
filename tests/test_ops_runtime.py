"""The serving processes tune Python's garbage collector once the application is built
(app/ops/runtime.py): gunicorn workers through wsgi.py, the `fhir-agenda` commands through
the CLI's application factory. Checked in processes of their own (a frozen test process
would keep every object of the tests before it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.ops.runtime import FIRST_GENERATION

REPO_ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import gc; {load}; "
         "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")


@pytest.mark.parametrize("load", [
    "import wsgi",
    "from app.cli import _create_app; _create_app()",
], ids=["gunicorn worker (wsgi.py)", "fhir-agenda command"])
def test_a_serving_process_freezes_start_up_and_collects_less_often(
        load: str, tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'runtime.db'}",
               SECURITY_PROFILE="development", SECRET_KEY="x" * 32)
    done = subprocess.run([sys.executable, "-c", PROBE.format(load=load)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == [str(FIRST_GENERATION), "True"]
