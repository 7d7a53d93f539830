"""Wipe a projection, rebuild every projection with `fhir-agenda reindex`, return its output."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine, text

from app.cli import reindex_command


def reindex_after_wiping(app: Flask, engine: Engine, *wipe: str) -> str:
    with engine.begin() as conn:
        for statement in wipe:
            conn.execute(text(statement))
    result = app.test_cli_runner().invoke(reindex_command)
    assert result.exit_code == 0, result.output
    return result.output
