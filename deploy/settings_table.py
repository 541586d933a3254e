"""Every setting of every service as Markdown tables: `python -m deploy.settings_table` prints them,
`--write` puts them into README.md between its settings markers; a test keeps the two in step."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic_settings import BaseSettings

SETTINGS = (
    ("services.kit.settings", "CommonSettings", "every service"),
    ("services.kit.auth", "AuthSettings", "operator tokens"),
    ("services.ingest.settings", "IngestSettings", "ingest API"),
    ("services.scorer.settings", "ScorerSettings", "scorer"),
    ("services.coordination.settings", "CoordinationSettings", "coordination service"),
    ("services.notifier.settings", "NotifierSettings", "notifier"),
    ("services.blocklist.settings", "BlocklistSettings", "blocklist"),
    ("services.banksim.settings", "BanksimSettings", "simulated banks"),
)
SECRET_WORDS = ("secret", "key")


def settings_classes() -> Iterator[tuple[type[BaseSettings], str]]:
    for module, name, what in SETTINGS:
        yield getattr(importlib.import_module(module), name), what


def env_names(cls: type[BaseSettings]) -> Iterator[tuple[str, str, str]]:
    """(variable, default shown, meaning) of each field."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else (prefix + name).upper()
        if field.default_factory is not None:
            default = "(derived, see meaning)"
        elif any(word in name for word in SECRET_WORDS) and field.default:
            default = "development value; must be set in production"
        else:
            default = f"`{field.default}`" if field.default not in (None, "") else "(empty)"
        yield variable, default, field.description or ""


def table() -> str:
    lines: list[str] = []
    for cls, what in settings_classes():
        lines += ["", f"**{what}**", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{v}` | {d} | {m} |" for v, d, m in env_names(cls)]
    return "\n".join(lines) + "\n"


def write_readme(path: Path = Path(__file__).parents[1] / "README.md") -> None:
    text = path.read_text()
    block = f"<!-- settings:start -->\n{table()}<!-- settings:end -->"
    path.write_text(
        re.sub(r"<!-- settings:start -->.*<!-- settings:end -->", lambda _: block, text, flags=re.S)
    )


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_readme()
    else:
        sys.stdout.write(table())
