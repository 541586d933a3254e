"""Keyset paging of a list newest first: a page's cursor is its last row's time and id, so a row added
meanwhile neither shifts the next page nor is seen twice."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from services.kit.errors import InvalidInput


def cursor_of(at: datetime, ident: uuid.UUID) -> str:
    """The cursor of the page after the row at `at` with id `ident`."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode()


def after(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The time and id a cursor is of; a cursor no page made is refused naming `cursor`."""
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(stamp)
        at.astimezone(UTC)  # a hand-made one past year 9999 in UTC cannot be sent to the database
        return at, uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise InvalidInput("malformed cursor: not from a previous page", field="query.cursor") from exc
