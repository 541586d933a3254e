"""The bounds of an event's time, the same at the ingest API and in the scorer (events produced straight
to Kafka): not more than a skew ahead of the clock, not older than the history window. Any other time that
states the past (an answer's, a transfer's, a loss's) is held to the same skew (`ahead`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def ahead(at: datetime, *, max_ahead_s: float, now: datetime) -> str | None:
    """Why a time that states the past is refused at `now`: ahead of the clock by more than the skew allowed
    between clocks (STOPLINE_EVENT_MAX_AHEAD_S), or None."""
    # Aware datetimes compare across offsets without being converted (year 9999 at -14:00 would not fit).
    if at > now + timedelta(seconds=max_ahead_s):
        return f"more than {max_ahead_s:g} s in the future"
    return None


@dataclass(frozen=True)
class EventTimeBounds:
    max_ahead_s: float
    history_s: float

    def problem(self, occurred_at: datetime, *, now: float) -> str | None:
        """Why an event dated `occurred_at` is refused at wall-clock time `now` (Unix seconds), or None."""
        clock = datetime.fromtimestamp(now, UTC)
        if (problem := ahead(occurred_at, max_ahead_s=self.max_ahead_s, now=clock)) is not None:
            return problem
        if occurred_at < clock - timedelta(seconds=self.history_s):
            return f"older than the history window of {self.history_s / 86_400:g} days"
        return None
