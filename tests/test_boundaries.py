"""Services own their data: outside the coordination service, code reaches it only through its public
interface (`services.coordination.public`), never its repositories, models or services."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PUBLIC = "services.coordination.public"
# Tooling that runs the services or builds the schema, not a service using coordination's data.
ALLOWED = {
    "services/migrate.py": "registers every service's tables for the migrations",
    "deploy/local/run.py": "starts the coordination service",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_other_services_use_only_the_public_interface_of_coordination():
    crossing = {}
    for package in ("services", "models", "streams", "deploy"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("services/coordination/") or relative in ALLOWED:
                continue
            internal = {
                name
                for name in _imports(path)
                if name.startswith("services.coordination")
                and name not in ("services.coordination", "services.coordination.public")
                and not name.startswith(PUBLIC + ".")
            }
            if internal:
                crossing[relative] = sorted(internal)
    assert crossing == {}


def test_no_service_keeps_a_unit_of_work_of_its_own():
    """One unit of work (services.kit.db), with before-commit hooks: no second function of that name."""
    defined = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "services").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "unit_of_work"
    ]
    assert defined == ["services/kit/db.py"]
