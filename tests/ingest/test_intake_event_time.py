"""An event produced straight to Kafka dated outside the event-time bounds is set aside by ingest, as a posted
one is refused: on the dead-letter topic with reason `invalid` and a detail naming `occurred_at` (the
scorer's own reason, `event_time`, is for an event that aged out of the window while it waited)."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from tests import factories as f
from tests.ingest.test_intake import _handled, _record
from tests.kafka_tools import on_kafka

pytestmark = pytest.mark.integration


async def test_an_event_out_of_the_time_bounds_is_dead_lettered_by_ingest_as_invalid(infra, ingest, sessions):
    bank, _ = await f.institution(sessions, "bank")
    kafka = await on_kafka(infra, bank, "bank")
    person = f.phone()
    dated = {"old": f.now() - timedelta(days=8), "ahead": f.now() + timedelta(minutes=10)}
    events = {
        name: f.transfer(person, payer_account=f.account(), payee_account=f.account(), amount="5.00", at=at)
        for name, at in dated.items()
    }
    letters = await _handled(infra, kafka, bank, [_record(infra, bank, bank, e) for e in events.values()])
    assert [h["reason"] for h in letters] == [b"invalid", b"invalid"]
    details = [orjson.loads(h["detail"]) for h in letters]
    assert [(d["event_id"], d["field"]) for [d] in details] == [
        (events["old"]["event_id"], "occurred_at"),
        (events["ahead"]["event_id"], "occurred_at"),
    ]
    assert "older than the history window of 7 days" in details[0][0]["reason"]
    assert "more than 300 s in the future" in details[1][0]["reason"]
