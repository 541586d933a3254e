"""The bounds of an event's time, the same at the ingest API and in the scorer (events produced straight
to Kafka): not more than a skew ahead of the clock, not older than the history window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class EventTimeBounds:
    max_ahead_s: float
    history_s: float

    def problem(self, occurred_at: datetime, *, now: float) -> str | None:
        """Why an event dated `occurred_at` is refused at wall-clock time `now` (Unix seconds), or None."""
        clock = datetime.fromtimestamp(now, UTC)
        # Aware datetimes compare across offsets without being converted (year 9999 at -14:00 would not fit).
        if occurred_at > clock + timedelta(seconds=self.max_ahead_s):
            return f"more than {self.max_ahead_s:g} s in the future"
        if occurred_at < clock - timedelta(seconds=self.history_s):
            return f"older than the history window of {self.history_s / 86_400:g} days"
        return None
