"""An alert coordination cannot store is set aside on the dead-letter topic with its reason, and the alerts
before and after it are stored: one poison alert does not keep every later alert from the police."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from services.coordination.alerts import consumer
from services.coordination.alerts.models import AlertRow
from services.kit.logging import JsonFormatter
from streams import keys, topics
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert, AlertPayment, Subject
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import dead_letter_of, drained
from tests.metrics import sample

pytestmark = pytest.mark.integration
LARGEST = Decimal("999999999999.99")  # the largest amount of one payment


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[Producer]:
    producer = Producer(infra.kafka, client_id="test-coordination-dead-letters")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def _alert(**fields: Any) -> Alert:
    return f.alert(subject=Subject(phone=f.phone()), **fields)


def _police_only(**fields: Any) -> Alert:
    """A collection account's alert, for the police only: the notifier of the session (and of the fuzz's
    processes, which read the same topic) warns no one on it, so its sums past the columns poison only
    coordination, the consumer under test."""
    return _alert(typology="mule_fan_in", recommended_actions=["notify_police"], **fields)


async def _send_in_one_batch(infra: Infra, producer: Producer, *values: bytes) -> None:
    """Records a poll hands over in one batch: one partition, one produce request."""
    topic = topics.name(topics.ALERTS, infra.prefix)
    await producer.send_all([Record(topic, v, partition=0) for v in values])


async def _send_keyed_in_one_batch(infra: Infra, producer: Producer, *alerts: Alert) -> None:
    """Alerts keyed as the scorer keys them (by person), in one batch as `_send_in_one_batch`'s."""
    topic = topics.name(topics.ALERTS, infra.prefix)
    records = [
        Record(topic, a.model_dump_json().encode(), key=keys.person_key(a.subject.phone or ""), partition=0)
        for a in alerts
    ]
    await producer.send_all(records)


async def _stored(sessions: Any, *alerts: Alert) -> dict[uuid.UUID, AlertRow]:
    async with sessions() as s:
        query = select(AlertRow).where(AlertRow.id.in_([a.alert_id for a in alerts]))
        return {row.id: row for row in (await s.execute(query)).scalars()}


async def _drained(infra: Infra) -> None:
    """The barrier: the alerts consumer has committed past everything sent so far."""
    await drained(
        infra.kafka, (f"{infra.prefix}{consumer.GROUP}", [topics.name(topics.ALERTS, infra.prefix)])
    )


async def _dead_letters(coordination: Any, reason: str) -> float:
    return await sample(coordination, "stopline_coordination_dead_letters_total", reason=reason)


@pytest.fixture
async def refused_by_a_trigger(sessions: Any) -> AsyncIterator[uuid.UUID]:
    """An alert id whose insert a PostgreSQL trigger refuses (SQLSTATE P0001, its message naming the alert's
    phone): a failure that is neither an outage nor a value no column holds, at every attempt."""
    alert_id, name = uuid.uuid4(), f"refuse_{uuid.uuid4().hex[:12]}"
    async with sessions() as s, s.begin():
        await s.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION 'refused the alert of %', NEW.subject->>'phone' USING ERRCODE = 'P0001'; "
                f"END $$"
            )
        )
        await s.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON alerts FOR EACH ROW "
                f"WHEN (NEW.id = '{alert_id}') EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield alert_id
    finally:
        async with sessions() as s, s.begin():
            await s.execute(text(f"DROP TRIGGER {name} ON alerts"))
            await s.execute(text(f"DROP FUNCTION {name}()"))


async def test_a_poison_alert_is_set_aside_and_the_alerts_around_it_are_stored(
    infra, coordination, sessions, producer, refused_by_a_trigger, caplog
):
    """In one batch, an alert before and one after an alert that fails whenever it is stored: both are
    stored, the poison one is on the dead-letter topic ("unhandled", the exception's type, never its message
    with the phone) and counted once, once the group has committed past it."""
    before, poison, after = _alert(), _alert(alert_id=refused_by_a_trigger), _alert()
    phone = poison.subject.phone
    assert phone is not None
    unhandled = await _dead_letters(coordination, "unhandled")
    caplog.set_level(logging.INFO)

    values = [a.model_dump_json().encode() for a in (before, poison, after)]
    await _send_in_one_batch(infra, producer, *values)

    letter = await dead_letter_of(infra, values[1], group=consumer.GROUP)
    # What failed, the driver's error (every refusal of the database is a DBAPIError to SQLAlchemy).
    assert (letter["reason"], letter["detail"]) == (b"unhandled", b"RaiseError")
    assert letter["source.topic"] == topics.name(topics.ALERTS, infra.prefix).encode()
    await _drained(infra)
    assert set(await _stored(sessions, before, poison, after)) == {before.alert_id, after.alert_id}
    assert await _dead_letters(coordination, "unhandled") - unhandled == 1  # counted once Kafka had it
    messages = [r.getMessage() for r in caplog.records]
    assert "batch failed; handling its records one at a time" in messages  # the three came as one batch
    # As the service writes them (its JSON lines): the set-aside alert with where it failed, never a value.
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    [set_aside] = [line for line in lines if line["msg"].startswith("alert set aside")]
    assert set_aside["level"] == "error" and "Traceback" in set_aside["exc"]
    assert phone not in json.dumps(lines)


async def test_an_invalid_alert_is_dead_lettered_and_the_next_is_stored(
    infra, coordination, sessions, producer
):
    """An alert that fails validation is kept on the dead-letter topic ("invalid", the field and why), not
    only counted and dropped; the alert after it, in the same batch, is stored."""
    invalid, after = _alert(), _alert()
    value = invalid.model_dump_json().replace('"score":0.9', '"score":7').encode()
    invalids = await _dead_letters(coordination, "invalid")

    await _send_in_one_batch(infra, producer, value, after.model_dump_json().encode())

    letter = await dead_letter_of(infra, value, group=consumer.GROUP)
    assert (letter["reason"], letter["detail"]) == (
        b"invalid",
        b"score: Input should be less than or equal to 1",
    )
    await _drained(infra)
    assert set(await _stored(sessions, invalid, after)) == {after.alert_id}
    assert await _dead_letters(coordination, "invalid") - invalids == 1


def _largest(n: int) -> list[AlertPayment]:
    """`n` payments of the largest amount, each its own event."""
    at = f.now()
    return [
        AlertPayment(event_ref=f"bank-a:{f.unique('t')}", amount=LARGEST, occurred_at=at) for _ in range(n)
    ]


async def test_a_revision_whose_merged_amount_no_column_holds_is_set_aside(
    infra, coordination, sessions, producer, refused_by_a_trigger
):
    """Each revision's payments sum below 10^13 (valid at decode), but merged, the alert's amount at risk
    would be past NUMERIC(15, 2): that revision is set aside ("unhandled") and leaves its alert as it was.
    Right after it in the batch, an alert the database refuses otherwise is set aside too (two failures,
    not one failing twice: both are the database's to SQLAlchemy); the alert after them is stored."""
    first = _police_only(payments=_largest(9), amount_at_risk=str(9 * LARGEST))
    grown = first.model_copy(update={"revision": 2, "payments": _largest(9)})
    refused, after = _alert(alert_id=refused_by_a_trigger), _alert()
    await _send_in_one_batch(infra, producer, first.model_dump_json().encode())
    await _drained(infra)
    unhandled = await _dead_letters(coordination, "unhandled")

    values = [a.model_dump_json().encode() for a in (grown, refused, after)]
    await _send_in_one_batch(infra, producer, *values)

    letters = [await dead_letter_of(infra, value, group=consumer.GROUP) for value in values[:2]]
    assert [(x["reason"], x["detail"]) for x in letters] == [
        (b"unhandled", b"NumericValueOutOfRangeError"),
        (b"unhandled", b"RaiseError"),
    ]
    await _drained(infra)
    rows = await _stored(sessions, first, refused, after)
    assert set(rows) == {first.alert_id, after.alert_id}
    assert (rows[first.alert_id].revision, rows[first.alert_id].amount_at_risk) == (1, 9 * LARGEST)
    assert await _dead_letters(coordination, "unhandled") - unhandled == 2


async def test_revisions_in_a_row_whose_merged_amount_no_column_holds_are_all_set_aside(
    infra, coordination, sessions, producer
):
    """Every later revision of an alert whose merged payments no column holds fails as the first did, often
    right behind it: under the alert's key (its person), it is the same poison, set aside too, not taken for
    a condition failing every alert (which would stop the consumer, and the API's liveness with it). The
    alert after them, another person's, is stored and the consumer still runs."""
    first = _police_only(payments=_largest(9), amount_at_risk=str(9 * LARGEST))
    await _send_keyed_in_one_batch(infra, producer, first)
    await _drained(infra)
    unhandled = await _dead_letters(coordination, "unhandled")
    grown = first.model_copy(update={"revision": 2, "payments": _largest(9)})
    grown_more = first.model_copy(update={"revision": 3, "payments": [*grown.payments, *_largest(1)]})
    after = _alert()

    await _send_keyed_in_one_batch(infra, producer, grown, grown_more, after)

    letters = [
        await dead_letter_of(infra, a.model_dump_json().encode(), group=consumer.GROUP)
        for a in (grown, grown_more)
    ]
    assert [(x["reason"], x["detail"]) for x in letters] == [
        (b"unhandled", b"NumericValueOutOfRangeError")
    ] * 2
    await _drained(infra)
    rows = await _stored(sessions, first, after)
    assert set(rows) == {first.alert_id, after.alert_id}
    assert rows[first.alert_id].revision == 1
    assert await _dead_letters(coordination, "unhandled") - unhandled == 2
    assert (await coordination.get("/health/live")).status_code == 200
