"""The scoring library and the training tools are apart: no service imports `models.training`, so a
service image carries no training code (the scorer loads `models.features`, `models.artifact`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def test_no_service_nor_stream_module_imports_the_training_tools() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("services", "streams")
        for path in (ROOT / package).rglob("*.py")
        if any(name.startswith("models.training") for name in _imports(path))
    ]
    assert offenders == []


def test_the_scorer_process_loads_no_training_module() -> None:
    code = (
        "import sys, services.scorer.main\n"
        "print(sorted(m for m in sys.modules if m.startswith(('models.training', 'matplotlib'))))"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
