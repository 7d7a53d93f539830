"""The architecture's rules, checked: lower layers never import upper ones, and the tables
the code declares (app/storage/schema.py) are exactly those the Alembic migrations build,
on both databases."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from app.storage.schema import metadata

APP = Path(__file__).resolve().parents[1] / "app"
# The bottom of the stack: the error vocabulary, the clock, storage and the search engine.
LOWER = [APP / "outcome.py", APP / "clock.py", *sorted((APP / "storage").rglob("*.py")),
         *sorted((APP / "search").rglob("*.py"))]
UPPER = ("app.fhir", "app.web", "app.sas")
# Only the composition roots (the app factory, the command line) wire the HTTP layer in.
COMPOSITION_ROOTS = {APP / "__init__.py", APP / "cli.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top, in functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", LOWER, ids=lambda p: str(p.relative_to(APP.parent)))
def test_lower_layers_never_import_upper_ones(path: Path) -> None:
    upward = sorted(m for m in imported_modules(path) if _under(m, UPPER))
    assert upward == [], f"{path.relative_to(APP.parent)} imports {upward}"


def test_only_the_http_layer_and_the_composition_roots_import_app_fhir() -> None:
    offenders = {str(p.relative_to(APP.parent)): sorted(
        m for m in imported_modules(p) if _under(m, ("app.fhir",)))
        for p in APP.rglob("*.py")
        if (APP / "fhir") not in p.parents and p not in COMPOSITION_ROOTS}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from app.fhir.routes import fhir\n"
                      "def f():\n    import app.sas.shape\n")
    assert {"app.fhir.routes", "app.sas.shape"} <= imported_modules(module)


def test_the_migrations_build_exactly_the_declared_schema(engine: Engine) -> None:
    # `engine` is migrated to head by the fixture (Alembic, as `fhir-agenda migrate` does).
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
