"""The production profile's start-up refusals (gunicorn and the command line read the same
settings through app/ops/startup.py), and the logging settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.ops.startup import UnsafeSettings, process_settings, production_problems
from tests.support.live_server import REPO_ROOT, _gunicorn_options
from tests.support.postgres import free_port

BIN = Path(sys.executable).parent
SECURE = {"fhir_base_url": "https://agenda.example.fr/fhir",
          "public_web_url": "https://agenda.example.fr", "secret_key": "s3cret"}


def production(**values: object) -> Settings:
    return Settings(security_profile="production", **{**SECURE, **values})  # type: ignore[arg-type]


def test_safe_production_settings_pass_and_development_is_never_checked() -> None:
    assert production_problems(production()) == []
    assert production_problems(Settings(security_profile="development")) == []


@pytest.mark.parametrize(("values", "named"), [
    ({"fhir_base_url": Settings.fhir_base_url}, "FHIR_BASE_URL is not set"),
    ({"public_web_url": Settings.public_web_url}, "PUBLIC_WEB_URL is not set"),
    ({"secret_key": None}, "SECRET_KEY is not set"),
    ({"fhir_base_url": "http://agenda.example.fr/fhir"},
     "FHIR_BASE_URL='http://agenda.example.fr/fhir' is not an https:// URL"),
    # The loopback opt-in (tests, a trial on one machine) never covers a real host.
    ({"fhir_base_url": "http://agenda.example.fr/fhir", "allow_http_loopback": True},
     "FHIR_BASE_URL='http://agenda.example.fr/fhir' is not an https:// URL"),
    ({"public_web_url": "http://127.0.0.1:8000"},
     "PUBLIC_WEB_URL='http://127.0.0.1:8000' is not an https:// URL"),
])
def test_each_unsafe_setting_is_refused_by_name(values: dict[str, object], named: str) -> None:
    problems = production_problems(production(**values))
    assert len(problems) == 1 and problems[0].startswith(named), problems


def test_http_on_a_loopback_host_needs_the_explicit_opt_in() -> None:
    local = {"fhir_base_url": "http://127.0.0.1:8000/fhir",
             "public_web_url": "http://localhost:8000", "allow_http_loopback": True}
    assert production_problems(production(**local)) == []


def test_the_process_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv("SECURITY_PROFILE", "production")
    for name in ("FHIR_BASE_URL", "PUBLIC_WEB_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_FORMAT", "text")
    with pytest.raises(UnsafeSettings) as refused:
        process_settings()
    message = str(refused.value)
    assert message.startswith("The production profile refuses to start:")
    for name in ("FHIR_BASE_URL", "PUBLIC_WEB_URL", "SECRET_KEY"):
        assert f"  - {name} is not set" in message
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(UnsafeSettings, match="LOG_FORMAT='xml'"):
        process_settings()


def _environment(tmp_path: Path, **values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(
        ("SECURITY_", "FHIR_", "PUBLIC_WEB", "SECRET_", "DATABASE_", "PROMETHEUS_", "LOG_"))}
    return {**keep, "DATABASE_URL": f"sqlite:///{tmp_path / 'agenda.db'}",
            "SECURITY_PROFILE": "production", **values}


def test_the_command_line_refuses_like_the_server(tmp_path: Path) -> None:
    result = subprocess.run([str(BIN / "fhir-agenda"), "migrate"], cwd=REPO_ROOT,
                            env=_environment(tmp_path, SECRET_KEY="s3cret"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Error: The production profile refuses to start:" in result.stderr
    assert "FHIR_BASE_URL is not set" in result.stderr
    assert "SECRET_KEY" not in result.stderr  # only what is wrong
    result = subprocess.run([str(BIN / "fhir-agenda"), "migrate"], cwd=REPO_ROOT,
                            env=_environment(tmp_path, LOG_LEVEL="LOUD"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "LOG_LEVEL='LOUD'" in result.stderr


def test_the_command_line_reads_the_server_settings(tmp_path: Path) -> None:
    environment = _environment(tmp_path, FHIR_BASE_URL="https://agenda.example.fr/fhir",
                               PUBLIC_WEB_URL="https://agenda.example.fr",
                               SECRET_KEY="s3cret", OAUTH_SIGNING_KEY="",
                               LOG_FORMAT="json")
    for command in (["migrate"], ["oauth", "register-client", "--json", "--name", "Agenda X",
                                  "--scope", "system/Slot.rs"]):
        result = subprocess.run([str(BIN / "fhir-agenda"), *command], cwd=REPO_ROOT,
                                env=environment, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    client = json.loads(result.stdout)
    assert client["token_endpoint"] == "https://agenda.example.fr/oauth/token"
    # The logs of the command are JSON lines too.
    assert all(json.loads(line)["level"] for line in result.stderr.splitlines() if line)


def test_gunicorn_stops_at_boot_naming_the_variable(tmp_path: Path) -> None:
    environment = _environment(tmp_path, FHIR_BASE_URL="http://agenda.example.fr/fhir",
                               PUBLIC_WEB_URL="https://agenda.example.fr", SECRET_KEY="s3cret")
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", *_gunicorn_options(), "-w", "1",
         "-b", f"127.0.0.1:{free_port()}", "wsgi:app"], cwd=REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert ("FHIR_BASE_URL='http://agenda.example.fr/fhir' is not an https:// URL"
            in result.stderr)
    assert "Worker failed to boot" in result.stderr
