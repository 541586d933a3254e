"""Episode figures say only what the data supports: the share caught before the money left counts the
episodes whose money did leave, and a figure with nothing to count is n/a, never a made-up 0% or 100%."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.features.vector import FEATURE_NAMES
from models.training.evaluate import episode_recall
from models.training.report import _pct
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
