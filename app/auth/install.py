"""Wire app/auth into the application: authentication gate, token endpoint, commands."""

from __future__ import annotations

from flask import Flask

from app.auth.gate import install_gate
from app.config import Settings


def install(app: Flask, settings: Settings) -> None:
    install_gate(app)
