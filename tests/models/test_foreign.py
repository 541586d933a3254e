"""The foreign test world (models.foreign): valid events, deterministic, complete, partial coverage kept."""

from __future__ import annotations

import functools

from models.foreign.measure import report, share
from models.foreign.negatives import KINDS
from models.foreign.world import ScamTypes, World, build
from streams.schemas.alerts import Alert, Subject
from streams.schemas.events import event_adapter
from tests import factories as f


@functools.cache
def _world(seed: int = 3) -> tuple[World, list]:
    world = build(400, 3, seed)
    return world, list(world.events())


def test_every_body_validates_and_names_its_person():
    _, events = _world()
    assert len(events) > 400 * 3 * 10
    last = 0.0
    for reported_at, sim in events:
        event = event_adapter.validate_python(sim.body)
        assert event.person_phone == sim.person_phone
        assert sim.source == event.source
        assert reported_at >= last
        assert reported_at >= event.occurred_at.timestamp()  # reported after it happened
        last = reported_at


def test_event_ids_are_unique_per_institution():
    _, events = _world()
    refs = [sim.ref for _, sim in events]
    assert len(refs) == len(set(refs))


def test_deterministic_per_seed():
    a, b = build(150, 2, 11), build(150, 2, 11)
    assert [(t, s.ref, s.body) for t, s in a.events()] == [(t, s.ref, s.body) for t, s in b.events()]
    c = build(150, 2, 12)
    assert [s.body for _, s in c.events()][:50] != [s.body for _, s in build(150, 2, 11).events()][:50]


def test_each_typology_and_negative_kind_appears():
    world = build(3000, 3, 5)
    assert {e.typology for e in world.episodes} == set(ScamTypes)
    assert {n.kind for n in world.negatives} == set(KINDS)


def test_silent_institutions_emit_nothing():
    world, events = _world()
    assert world.params.silent
    assert not {sim.institution for _, sim in events} & world.params.silent
    # and their customers do exist: the events are dropped, not never made
    assert any(
        p.telecom in world.params.silent or any(b in world.params.silent for b, _ in p.banks)
        for p in world.people
    )


def test_first_payee_forwards_after_the_first_payment():
    world, _ = _world()
    assert world.episodes
    for ep in world.episodes:
        assert ep.payments
        assert ep.money_left_at > ep.first_payment_at
        assert ep.start <= ep.first_payment_at
        assert ep.first_payment_ref in ep.refs


def test_measure_without_alerts_counts_nothing_and_every_measured_truth():
    world, _ = _world()
    result = report(world, [], measure_days=1)
    assert result["episodes"]["alerted"]["n"] == 0
    assert result["false_alerts"]["n"] == 0
    assert sum(s["of"] for s in result["hard_negatives"].values()) > 0
    lo, hi = share(0, 10)["ci95"]
    assert lo == 0.0 and 0.30 < hi < 0.31  # the exact interval of 0 of 10


def test_measure_counts_an_episode_early_or_late_a_false_alert_and_a_hard_negative_alerted():
    """The figures docs/model.md gives are these counts: an alert naming an episode's first payment before
    its money left is early, one after it late, one about nobody false, one on a hard negative's payment
    both false and that kind alerted."""
    world, _ = _world()
    start = world.t0  # every day measured
    measured = [e for e in world.episodes if e.first_payment_at >= start and e.visible]
    early_one, late_one = measured[0], measured[1]
    negative = next(n for n in world.negatives if n.at >= start)
    quiet = next(p.phone for p in world.people if p.phone not in {e.victim for e in world.episodes})

    def made(at: float, ref: str, phone: str | None = None) -> tuple[float, Alert]:
        return at, f.alert(triggering_event_ids=[ref], subject=Subject(phone=phone))

    alerts = [
        made(early_one.first_payment_at + 1, early_one.first_payment_ref),
        made(late_one.money_left_at + 1, late_one.first_payment_ref),
        made(negative.at + 1, negative.ref),
        made(start + 3600, "bank-a:nothing-of-the-world", quiet),
    ]
    result = report(world, alerts, measure_days=world.days)
    assert (result["episodes"]["alerted"]["n"], result["episodes"]["early"]["n"]) == (2, 1)
    assert result["false_alerts"]["n"] == 2  # the hard negative's and the one about nobody
    assert result["false_alerts_not_on_hard_negatives"]["n"] == 1
    assert result["hard_negatives"][negative.kind]["n"] >= 1
