"""Every setting of every service as Markdown tables: `python -m deploy.settings_table` prints them,
`--write` puts them into docs/settings.md between its settings markers; a test keeps the two in step.

The table is the same wherever it is generated: defaults computed from the environment are shown as
they are with none set, and a path inside the checkout is shown relative to it."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from pydantic import SecretStr
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
MARKERS = re.compile(r"<!-- settings:start -->.*<!-- settings:end -->", flags=re.S)

SETTINGS = (
    ("services.kit.settings", "CommonSettings", "every service"),
    ("services.kit.auth", "AuthSettings", "operator tokens"),
    ("services.kit.ratelimit", "RateLimitSettings", "rate limits"),
    ("services.ingest.settings", "IngestSettings", "ingest API"),
    ("services.scorer.settings", "ScorerSettings", "scorer"),
    ("services.coordination.settings", "CoordinationSettings", "coordination service"),
    ("services.notifier.settings", "NotifierSettings", "notifier"),
    ("services.blocklist.settings", "BlocklistSettings", "blocklist"),
    ("services.console.settings", "ConsoleSettings", "console"),
    ("services.banksim.settings", "BanksimSettings", "simulated banks"),
)
SECRET_WORDS = ("secret", "key")


def settings_classes() -> Iterator[tuple[type[BaseSettings], str]]:
    for module, name, what in SETTINGS:
        yield getattr(importlib.import_module(module), name), what


def _shown(value: Any) -> str:
    """A default as the table shows it: paths in the checkout relative to it, collections as JSON."""
    if isinstance(value, Path) and value.resolve().is_relative_to(ROOT):
        return f"`{value.resolve().relative_to(ROOT)}` (in the checkout)"
    if isinstance(value, list | tuple | dict):
        value = json.dumps(value, default=str)
    return f"`{value}`" if value not in (None, "") else "(empty)"


def env_names(cls: type[BaseSettings]) -> Iterator[tuple[str, str, str]]:
    """(variable, default shown, meaning) of each field."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else (prefix + name).upper()
        if isinstance(field.default, SecretStr) and not field.default.get_secret_value():
            default = "(empty)"
        elif any(word in name for word in SECRET_WORDS) and field.default:
            default = "development value; must be set in production"
        elif field.default_factory is not None:
            # What the default is on a machine that sets nothing (e.g. no local stack ports).
            with mock.patch.dict(os.environ, clear=True):
                default = _shown(field.default_factory())  # type: ignore[call-arg]
        else:
            default = _shown(field.default)
        yield variable, default, field.description or ""


def table() -> str:
    lines: list[str] = []
    for cls, what in settings_classes():
        lines += ["", f"**{what}**", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{v}` | {d} | {m} |" for v, d, m in env_names(cls)]
    return "\n".join(lines) + "\n"


def block() -> str:
    return f"<!-- settings:start -->\n{table()}<!-- settings:end -->"


def write(path: Path = SETTINGS_DOC) -> None:
    text = path.read_text()
    path.write_text(MARKERS.sub(lambda _: block(), text))


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        sys.stdout.write(table())
