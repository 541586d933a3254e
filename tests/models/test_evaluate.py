"""Episode figures say only what the data supports: the share caught before the money left counts the
episodes whose money did leave, and a figure with nothing to count is n/a, never a made-up 0% or 100%."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from models.features.vector import FEATURE_NAMES
from models.training.evaluate import episode_recall
from models.training.report import _pct, interval, rate_interval
from models.training.table import FeatureTable
from tests import factories as f

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


def _table() -> tuple[FeatureTable, np.ndarray]:
    """Three scam payments (episodes a, b, c at minutes 1, 2, 3) among ordinary ones; all scored high."""
    label = np.array([0, 1, 1, 1, 0], dtype=np.int8)
    table = f.feature_table(np.zeros((5, len(FEATURE_NAMES))), label)
    table = replace(
        table,
        scored_at=T0 + np.arange(5, dtype=np.float64) * 60,
        episode_id=np.array(["", "a", "b", "c", ""]),
    )
    return table, np.array([0.1, 0.9, 0.9, 0.9, 0.1])


def _at(minute: float) -> str:
    return datetime.fromtimestamp(T0 + minute * 60, UTC).isoformat()


def test_the_early_share_counts_only_episodes_whose_money_left():
    table, scores = _table()
    episodes: list[dict[str, Any]] = [
        {"scenario_id": "a", "typology": "t", "first_payout_at": _at(5)},  # caught at 1, money left at 5
        {"scenario_id": "b", "typology": "t", "first_payout_at": _at(1)},  # caught at 2: too late
        {"scenario_id": "c", "typology": "t", "first_payout_at": None},  # the money never moved on
    ]
    recall, per, early = episode_recall(table, scores, 0.5, episodes)
    assert recall == 1.0 and per == {"t": (3, 3)}
    assert early == 0.5  # a of {a, b}; c is not counted as "early"


def test_nothing_to_count_reads_n_a():
    table, scores = _table()
    never_left = [{"scenario_id": "c", "typology": "t", "first_payout_at": None}]
    assert episode_recall(table, scores, 0.5, never_left)[2] is None
    recall, per, early = episode_recall(table, scores, 0.5, [])
    assert (recall, per, early) == (None, {}, None)
    assert _pct(None) == "n/a" and _pct(0.5) == "50.0%"


def test_intervals_of_a_few_dozen_episodes_are_wide_and_exact():
    # None of 19 alerted: the share may still be up to 17.6% (1 - 0.025^(1/19)); 78 of 87 spans 81-95%.
    low, high = interval(0, 19)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 19))
    low, high = interval(78, 87)
    assert 0.81 < low < 0.82 and 0.95 < high < 0.96
    assert interval(87, 87)[1] == 1.0
    # No false alert in a period: the rate may still be up to 3.69 a period (-ln 0.025).
    low, high = rate_interval(0)
    assert low == 0.0 and high == pytest.approx(-math.log(0.025))
    low, high = rate_interval(17)
    assert 9.9 < low < 10.0 and 27.2 < high < 27.3
