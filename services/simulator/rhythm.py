"""The rhythm of activity: quiet at night, peaks in the morning and the evening (local time), and a week
whose Saturday and Sunday run at `weekend` times a weekday's pace."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

# Xinjiang keeps Beijing time officially; a fixed offset avoids depending on the tz database.
LOCAL = timezone(timedelta(hours=8), "CST")


def _raw(hour: float) -> float:
    def bump(centre: float, width: float, height: float) -> float:
        # Distance around the clock, so a bump near midnight wraps.
        d = min(abs(hour - centre), 24 - abs(hour - centre))
        return height * math.exp(-0.5 * (d / width) ** 2)

    return 0.08 + bump(10.0, 2.0, 1.0) + bump(14.5, 2.5, 0.6) + bump(20.0, 2.0, 1.1)


# Normalised so the mean over a day is 1: `--rate` is then the day's average rate.
_MEAN = sum(_raw(m / 60) for m in range(24 * 60)) / (24 * 60)


def factor(when: datetime, weekend: float = 1.0) -> float:
    """Multiplier of the average rate at this moment (mean 1 over a week)."""
    local = when.astimezone(LOCAL)
    hour = local.hour + local.minute / 60 + local.second / 3600
    day = weekend if local.weekday() >= 5 else 1.0
    return _raw(hour) / _MEAN * day / ((5 + 2 * weekend) / 7)
