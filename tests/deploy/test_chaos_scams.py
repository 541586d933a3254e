"""The fault suite's scams, as its traffic posts them, through both scorer stages with the shipped model:
each kind is alerted in order, and only because of its telecom event (the transfer alone is not), so a
run's `scams_by_kind` measures the path of each (a hard rule's: the long call from a stranger, the account
taken over after a SIM change). The suite checks under faults that every one is alerted; this says it
would be without them."""

from __future__ import annotations

import pytest

from deploy.chaos.traffic import SCAMS, TELECOM, ScamKind, scam_events
from models.artifact import ARTIFACTS
from tests import factories as f
from tests.scorer.scenes import NOW, movements, score, stage, stage_one

Event = tuple[str, dict[str, object]]


def _alerted(victim: str, *events: Event) -> bool:
    alerts, _ = score(stage(ARTIFACTS), movements(*events, persons=stage_one()))
    return any(a.subject.phone == victim for a in alerts)


@pytest.mark.parametrize("kind", SCAMS)
def test_each_kind_of_the_suites_scams_is_alerted_in_order_and_only_with_its_telecom_event(
    kind: ScamKind,
) -> None:
    # Both at the hard rules' 0.95 (m-20261207-r10 alone: the SIM change's 0.80 under its 0.82); the
    # transfer alone 0.19.
    victim = f.phone()
    lead, transfer = scam_events(kind, victim, NOW)
    assert lead["occurred_at"] < transfer["occurred_at"]

    assert _alerted(victim, (TELECOM, lead), ("bank-a", transfer))
    assert not _alerted(victim, ("bank-a", transfer))


@pytest.mark.parametrize("kind", SCAMS)
def test_each_kind_is_alerted_when_its_telecom_event_is_read_after_the_transfer(kind: ScamKind) -> None:
    """The telecom's and the bank's events are on topics of their own: under faults (a member moved, a
    partition fetched late) the transfer may be scored first. The late call or SIM change scores it again
    (a clean-clone run missed 1 of 19 scams, kind unknown, while a SIM change had no late rescore)."""
    victim = f.phone()
    lead, transfer = scam_events(kind, victim, NOW)
    assert _alerted(victim, ("bank-a", transfer), (TELECOM, lead))
