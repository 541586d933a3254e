"""The offline replay watches people from staggered moments, as a live scorer knows them only since it
started; the draw is deterministic and blind to labels."""

from __future__ import annotations

from datetime import UTC, datetime

from models.training.dataset import Observation, Replay
from streams.schemas import events as ev

T0 = 1_800_000_000.0
SPAN = 21 * 86_400.0


def test_observation_start_is_deterministic_and_staggered_for_the_late_share():
    observe = Observation(T0, SPAN, late_share=0.5, seed=7)
    phones = [f"+86138{i:08d}" for i in range(2000)]
    starts = [observe.since(p) for p in phones]
    assert starts == [Observation(T0, SPAN, late_share=0.5, seed=7).since(p) for p in phones]
    late = [s for s in starts if s > T0]
    assert 0.45 < len(late) / len(phones) < 0.55
    assert all(T0 < s < T0 + SPAN for s in late)
    assert {Observation(T0, SPAN, late_share=0.0).since(p) for p in phones} == {T0}


def _transfer(at: float, ref: str) -> ev.Transfer:
    return ev.Transfer(
        type="bank.transfer",
        event_id=ref,
        occurred_at=datetime.fromtimestamp(at, UTC),
        payer_account="ACC1",
        payer_phone="+8613800000001",
        payee_account="ACC2",
        payee_institution="bank-b",
        amount="100.00",
        currency="CNY",
        channel="mobile",
    )


def test_replay_skips_a_persons_events_before_they_are_watched():
    observe = Observation(T0, SPAN, late_share=1.0)
    watched_from = observe.since("+8613800000001")
    replay = Replay(observe)
    replay.apply(watched_from - 1, "bank-a", _transfer(watched_from - 1, "before"), "bank-a:before")
    replay.apply(watched_from + 1, "bank-a", _transfer(watched_from + 1, "after"), "bank-a:after")
    assert [ref for ref, *_ in replay.meta] == ["bank-a:after"]
