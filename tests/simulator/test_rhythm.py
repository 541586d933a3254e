"""The daily rhythm: quiet at night, peaks morning and evening, mean 1 over the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
