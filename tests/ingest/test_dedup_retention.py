"""Ingest refuses to start with a de-duplication ledger that forgets an event id while the event would still
be accepted: a retry after that would be accepted again and reach the scorer twice."""

from __future__ import annotations

import pytest

from services.ingest.app import build
from services.ingest.settings import IngestSettings
from services.kit.settings import CommonSettings


@pytest.mark.parametrize(
    ("retention_days", "history_days", "max_ahead_s"),
    [
        (7, 7, 300),  # an event dated 5 minutes ahead is accepted until 7 days 5 minutes after it came
        (8, 10, 300),  # a site that widened the history window alone
        (8, 8, 1),
    ],
)
def test_a_retention_short_of_the_history_window_and_the_allowance_stops_ingest(
    retention_days: int, history_days: float, max_ahead_s: float
):
    common = CommonSettings(event_history_days=history_days, event_max_ahead_s=max_ahead_s)
    with pytest.raises(ValueError, match="must cover") as refused:
        build(common, IngestSettings(dedup_retention_days=retention_days))
    said = str(refused.value)
    assert f"STOPLINE_INGEST_DEDUP_RETENTION_DAYS ({retention_days})" in said
    assert f"STOPLINE_EVENT_HISTORY_DAYS ({history_days:g})" in said
    assert f"STOPLINE_EVENT_MAX_AHEAD_S ({max_ahead_s:g} s)" in said


@pytest.mark.parametrize(
    ("retention_days", "history_days", "max_ahead_s"),
    [(8, 7, 300), (11, 10, 86_400), (1, 0.5, 43_200)],  # the defaults; room to spare; exactly enough
)
def test_a_retention_that_covers_them_starts(retention_days: int, history_days: float, max_ahead_s: float):
    common = CommonSettings(event_history_days=history_days, event_max_ahead_s=max_ahead_s)
    assert build(common, IngestSettings(dedup_retention_days=retention_days)) is not None


def test_the_defaults_cover_the_history_window_and_the_allowance():
    assert build(CommonSettings(), IngestSettings()) is not None
