"""Structured JSON logs, one object a line; personal identifiers are pseudonymised before they are logged."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
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
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


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
