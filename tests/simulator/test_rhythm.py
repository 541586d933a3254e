"""The daily rhythm: quiet at night, peaks morning and evening, mean 1 over the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.simulator import rhythm

DAY = datetime(2025, 3, 1, tzinfo=rhythm.LOCAL)


def at(hour: float) -> float:
    return rhythm.factor(DAY + timedelta(hours=hour))


def test_shape() -> None:
    assert at(3) < 0.2
    assert at(10) > 1.5 and at(20) > 1.5
    assert at(3) < at(7) < at(10)
    assert at(16) < at(20)


def test_mean_is_one_and_time_zone_is_respected() -> None:
    values = [at(m / 60) for m in range(0, 24 * 60, 5)]
    assert abs(sum(values) / len(values) - 1) < 0.01
    # 02:00 UTC is 10:00 in Xinjiang (Beijing time): a peak, not the night.
    assert rhythm.factor(datetime(2025, 3, 1, 2, tzinfo=UTC)) == at(10)


def test_the_weekend_runs_at_its_own_pace_and_the_week_averages_one() -> None:
    monday = datetime(2025, 3, 3, tzinfo=rhythm.LOCAL)
    saturday = monday + timedelta(days=5)
    assert rhythm.factor(saturday + timedelta(hours=10), 0.8) == pytest.approx(
        0.8 * rhythm.factor(monday + timedelta(hours=10), 0.8)
    )
    week = [rhythm.factor(monday + timedelta(minutes=m), 0.8) for m in range(0, 7 * 1440, 10)]
    assert sum(week) / len(week) == pytest.approx(1.0, abs=0.01)
