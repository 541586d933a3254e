"""The model alerts only once a partition's state covers `model_warmup_hours` of event time: on a younger
state every payee looks new. Hard rules are not held back."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
from prometheus_client import REGISTRY

from models.features.engine import account
from models.features.person import PERSON_FEATURES, PersonState
from models.features.vector import FEATURE_SET_HASH
from services.scorer.account_stage import AccountStage
from services.scorer.books import Book
from services.scorer.settings import ScorerSettings
from streams import topics
from streams.schemas.alerts import Alert
from streams.schemas.movements import Movement
from tests.scorer.scenes import NOW, inflows, scene, score, stage_one, unused_producer

T0 = 1_800_000_000.0


class SureModel:
    """Scores everything 0.99; enough of ModelSlot for the account stage."""

    threshold = 0.5
    live = SimpleNamespace(
        contributions=lambda rows: np.zeros(rows.shape),
        typology=lambda rows: [("", 0.0)] * len(rows),
        version="stub",
    )

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), 0.99)

    def maybe_swap(self) -> None:
        return None


def _inflow(
    at: float, ref: str, payer: str = "+8613800000001", *, person_history_s: float | None = None
) -> Movement:
    return Movement(
        direction="in",
        account="6222000000000000001",
        institution="bank-a",
        counterparty="6217000000000000002",
        counterparty_institution="bank-b",
        amount=50_000.0,
        occurred_at=datetime.fromtimestamp(at, UTC),
        event_ref=ref,
        payer_phone=payer,
        person_features=[0.0] * len(PERSON_FEATURES),
        feature_set=FEATURE_SET_HASH,
        person_history_s=person_history_s,
    )


def _stage(*, warmup_hours: float) -> AccountStage:
    return AccountStage(
        ScorerSettings(model_warmup_hours=warmup_hours),
        producer=unused_producer(),
        prefix="",
        version="t",
        model=SureModel(),  # type: ignore[arg-type]
    )


def _alerts(stage: AccountStage, moves: list[Movement]) -> list[Alert]:
    return score(stage, moves)[0]


def test_model_alerts_wait_until_the_state_covers_the_warmup_hours():
    stage = _stage(warmup_hours=24)
    assert _alerts(stage, [_inflow(T0, "b:1")]) == []  # the first event: nothing watched yet
    assert _alerts(stage, [_inflow(T0 + 23 * 3600, "b:2", "+8613800000003")]) == []
    late = _alerts(stage, [_inflow(T0 + 24 * 3600, "b:3", "+8613800000004")])
    assert len(late) == 1


def test_a_restored_state_is_not_cold():
    stage = _stage(warmup_hours=24)
    restored = stage.accounts.setdefault(0, Book())
    account(restored, "bank-c/6228000000000000009").seen(T0 - 86_400)  # as a snapshot brings it back
    assert len(_alerts(stage, [_inflow(T0, "b:1")])) == 1


def test_one_payment_sent_a_day_late_does_not_warm_a_fresh_state():
    """A bank's delayed batch (yesterday's payment, inside the history the scorer takes) on a fresh
    partition: the state still holds minutes of traffic, and the model still waits."""
    stage = _stage(warmup_hours=24)
    assert _alerts(stage, [_inflow(T0, "b:1")]) == []
    assert _alerts(stage, [_inflow(T0 - 25 * 3600, "b:0", "+8613800000009")]) == []
    assert _alerts(stage, [_inflow(T0 + 60, "b:2", "+8613800000003")]) == []
    assert len(_alerts(stage, [_inflow(T0 + 24 * 3600, "b:3", "+8613800000004")])) == 1


def test_only_the_alerts_the_warm_up_held_back_are_counted_as_held_back():
    stage = _stage(warmup_hours=24)
    before = REGISTRY.get_sample_value("stopline_scorer_held_back_total") or 0.0
    assert _alerts(stage, [_inflow(T0, "b:1"), _inflow(T0 + 60, "b:2", "+8613800000003")]) == []
    assert REGISTRY.get_sample_value("stopline_scorer_held_back_total") == before + 2


def test_events_a_little_out_of_order_are_history_without_a_warm_up():
    """With no warm-up (as the fault suite runs), a payment a few minutes older than the first one the
    partition saw (posted later: institutions' batches cross) is scored as any other, not held back."""
    stage = _stage(warmup_hours=0)
    assert len(_alerts(stage, [_inflow(T0, "b:1")])) == 1
    assert len(_alerts(stage, [_inflow(T0 - 60, "b:0", "+8613800000009")])) == 1


def test_a_payers_side_younger_than_the_warm_up_holds_the_model_back_on_a_warm_account_state():
    """Stage one's partition state (callers, payees, a person's history) fresh while stage two's is a day
    old: the payer's every caller and payee look new, and the model waits for that side too. A movement
    from an older stage one, which does not say, counts as warm."""
    stage = _stage(warmup_hours=24)
    restored = stage.accounts.setdefault(0, Book())
    account(restored, "bank-c/6228000000000000009").seen(T0 - 86_400)
    assert _alerts(stage, [_inflow(T0, "b:1", person_history_s=3600.0)]) == []
    warm = _alerts(stage, [_inflow(T0 + 60, "b:2", "+8613800000003", person_history_s=86_400.0)])
    older_stage_one = _alerts(stage, [_inflow(T0 + 120, "b:3", "+8613800000004")])
    assert [len(warm), len(older_stage_one)] == [1, 1]


def test_stage_one_says_how_much_history_its_partition_held_at_each_money_out():
    s = scene()
    fresh = inflows(s.call(minutes_ago=40, minutes=35), s.transfer("800.00", minutes_ago=3))
    assert [m.person_history_s for m in fresh] == [37 * 60.0]  # since the call, its first event
    # A state restored from a snapshot keeps its history: someone on the partition first seen a day ago.
    persons = stage_one()
    for partition in range(topics.EVENT_PARTITIONS):
        someone = PersonState()
        someone.seen(NOW.timestamp() - 86_400)
        persons.people[partition] = Book.restored({"+8613900000000": someone})
    restored = inflows(s.transfer("800.00", minutes_ago=3), persons=persons)
    assert [m.person_history_s for m in restored] == [86_400.0 - 180]
