"""The scorer's code run offline on simulated traffic (`models.training.scorer_replay`), which gives the
report's alert-level figures: every money-out the feature replay scores is scored by it too, whatever
the traffic's dates, and its alerts are one per episode."""

from __future__ import annotations

from datetime import datetime

from models.artifact import ARTIFACTS, active_version
from models.training.dataset import Replay
from models.training.scorer_replay import OfflineScorer
from services.simulator.offline import OfflineConfig, Truth, generate


def test_every_money_out_is_scored_and_each_episode_alerted_once() -> None:
    config = OfflineConfig(
        population=300,
        days=1.0,
        scams_per_day=30,
        seed=3,
        start=datetime.fromisoformat("2026-03-02T00:00+08:00"),
    )
    events = list(generate(config, Truth()))
    features = Replay()
    for reported_at, sim in events:
        features.event(reported_at, sim)
    replayed = OfflineScorer(ARTIFACTS, active_version(ARTIFACTS)).run(events)
    assert replayed.events == len(events)
    # Months old, nothing refused; but, as live, a money-out reported more than 5 minutes before it
    # occurred (the simulator makes a few) is dead-lettered.
    ahead = {ref for ref, reported, occurred, *_ in features.meta if occurred - reported > 300}
    assert {m[0] for m in replayed.meta} == {m[0] for m in features.meta} - ahead
    assert replayed.alerts, "scams at 30 a day for a day and not one alert"
    first = [a for _, a in replayed.alerts if a.revision == 1]
    assert len({a.alert_id for a in first}) == len(first)
