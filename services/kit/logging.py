"""Structured JSON logs, one object a line; personal identifiers are pseudonymised before they are logged."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

_pseudonym_key = b"dev-only-pseudonym-key-change-me"


def pseudonym(value: str) -> str:
    """A stable, keyed pseudonym of a phone or account number (or another identifier that leads back to a
    person: a case number, a bank's transaction id in a feedback export), safe to log and to correlate on."""
    return "p_" + hmac.new(_pseudonym_key, value.encode(), hashlib.sha256).hexdigest()[:16]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            entry["exc"] = safe_traceback(record.exc_info[1])
        return orjson.dumps(entry, default=str).decode()


def safe_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and of the exceptions it came from, with where each was raised and its type,
    but never its message: messages carry values (a database error's DETAIL names the row's phone or
    account number, a validation error its input). Database errors keep their SQLSTATE and constraint."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another occurred"
        else:
            current = None
    parts: list[str] = []
    for error, link_to_next in reversed(chain):
        frames = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), capture_locals=False)
        parts.append("Traceback (most recent call last):\n" + "".join(frames.format()) + _describe(error))
        if link_to_next:
            parts.append(link_to_next + ":")
    return "\n".join(parts)


def _describe(error: BaseException) -> str:
    kind = type(error)
    said = f"{kind.__module__}.{kind.__qualname__}"
    facts = {name: getattr(error, name, None) for name in ("code", "sqlstate", "constraint_name")}
    known = ", ".join(f"{name}={value}" for name, value in facts.items() if isinstance(value, str | int))
    return f"{said} ({known})" if known else said


def configure_logging(*, service: str, level: str = "INFO", pseudonym_key: str | None = None) -> None:
    """Send JSON logs to stderr; call once at start-up."""
    global _pseudonym_key
    if pseudonym_key:
        _pseudonym_key = pseudonym_key.encode()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every rebalance detail at INFO; keep those for debugging only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("stopline").info("logging configured", extra={"fields": {"service": service}})


def log_fields(**fields: Any) -> dict[str, Any]:
    """`extra=` argument that puts fields into the JSON entry: `log.info("msg", extra=log_fields(n=3))`."""
    return {"fields": fields}
