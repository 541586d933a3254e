"""An alert the notifier cannot handle is set aside on the dead-letter topic with its reason, and the
alerts before and after it are warned: one poison alert does not stop every later citizen's warning."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from services.kit.logging import JsonFormatter
from services.notifier.warnings import consumer
from streams import topics
from streams.producer import Record
from streams.schemas.alerts import MAX_PAYMENTS, AlertPayment
from tests import factories as f
from tests.kafka_tools import dead_letter_of, drained, eventually
from tests.metrics import sample
from tests.notifier.helpers import alerts_joined, messages_to, token_in, warnings_for

pytestmark = pytest.mark.integration


def _on_one_partition(notifier: Any, *values: bytes) -> list[Record]:
    """Records a poll hands over in one batch: one partition, one produce request."""
    return [Record(topics.name(topics.ALERTS, notifier.prefix), v, partition=0) for v in values]


async def _set_aside_before(infra: Any, notifier: Any, poison: bytes, phone: str) -> dict[str, bytes]:
    """Send `poison`, then an alert for `phone`, in one batch; once `phone` is warned and the consumer's
    offsets reach the end of the topic, the headers of the poison's dead letter."""
    good = notifier.make_alert(phone).model_dump_json().encode()
    await notifier.producer.send_all(_on_one_partition(notifier, poison, good))
    await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=30)
    letter = await dead_letter_of(infra, poison, group=consumer.GROUP)
    alerts = topics.name(topics.ALERTS, infra.prefix)
    await drained(infra.kafka, (f"{infra.prefix}{consumer.GROUP}", [alerts]))
    return letter


async def _dead_letters(notifier: Any, reason: str) -> float:
    return await sample(notifier.client, "stopline_notifier_dead_letters_total", reason=reason)


async def test_a_poison_alert_is_set_aside_and_the_alerts_around_it_are_warned(
    infra, notifier, sessions, caplog
):
    """The person said they are being defrauded; coordination refuses the case of the payment their next
    alert brings, at every attempt. In one batch with an alert before and one after it: both are warned,
    the poison one is on the dead-letter topic ("unhandled", the exception's type, never its message with
    the phone), its payment not joined, and a later alert is warned too: the consumer runs on, and its
    offsets reach the end of the topic."""
    victim, before, after, later = f.phone(), f.phone(), f.phone(), f.phone()
    call = f"tel-a:{f.unique('call')}"
    await notifier.alert(victim, call=call)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, victim), timeout_s=20)
    answered = await notifier.client.post(
        f"/v1/answers/{token_in(str(sms[0]['text']))}", json={"answer": "defrauded"}
    )
    assert answered.status_code == 200, answered.text
    notifier.cases.refused.add(victim)
    unhandled = await _dead_letters(notifier, "unhandled")
    caplog.set_level(logging.INFO)

    poison = notifier.make_alert(victim, call=call).model_dump_json().encode()
    batch = [notifier.make_alert(p).model_dump_json().encode() for p in (before, after)]
    await notifier.producer.send_all(_on_one_partition(notifier, batch[0], poison, batch[1]))
    await notifier.alert(later)

    def warned() -> bool:
        return all(messages_to(notifier.sms.receiver, p) for p in (before, after, later))

    await eventually(warned, timeout_s=30)
    letter = await dead_letter_of(infra, poison, group=consumer.GROUP)
    assert (letter["reason"], letter["detail"]) == (b"unhandled", b"InvalidInput")
    assert letter["source.topic"] == topics.name(topics.ALERTS, infra.prefix).encode()
    assert len(await alerts_joined(sessions, victim)) == 1  # nothing of the poison alert applied
    [warning] = await warnings_for(sessions, victim)
    assert warning.answer == "defrauded"
    alerts = topics.name(topics.ALERTS, infra.prefix)
    await drained(infra.kafka, (f"{infra.prefix}{consumer.GROUP}", [alerts]))
    assert await _dead_letters(notifier, "unhandled") - unhandled == 1  # counted once Kafka had it
    messages = [r.getMessage() for r in caplog.records]
    assert "batch failed; handling its records one at a time" in messages  # the three came as one batch
    # As the service writes them (its JSON lines): the set-aside alert with where it failed, never a value.
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    # Its own line: other tests' alerts on the shared topic may be set aside meanwhile (coordination's, at
    # the same offset of another partition, or of this one: coordination reads it too).
    at = (consumer.log.name, int(letter["source.partition"]), int(letter["source.offset"]))
    [set_aside] = [
        x
        for x in lines
        if x["msg"].startswith("alert set aside") and (x["logger"], x.get("partition"), x.get("offset")) == at
    ]
    assert set_aside["level"] == "error"
    assert "Traceback" in set_aside["exc"] and "services.kit.errors.InvalidInput" in set_aside["exc"]
    assert victim not in json.dumps(lines)


async def test_an_invalid_alert_is_dead_lettered_and_the_next_is_warned(infra, notifier):
    """An alert that fails validation goes to the dead-letter topic ("invalid", the fields and why) and is
    counted there once, not also as a warning decision (those are about valid alerts); the alert after it,
    in the same batch, is warned."""
    phone = f.phone()
    invalid = notifier.make_alert(phone).model_dump_json().replace('"score":0.8', '"score":7').encode()
    invalids = await _dead_letters(notifier, "invalid")
    decided = await sample(notifier.client, "stopline_warning_decisions_total", decision="invalid")

    letter = await _set_aside_before(infra, notifier, invalid, phone)
    assert (letter["reason"], letter["detail"]) == (
        b"invalid",
        b"score: Input should be less than or equal to 1",
    )
    assert await _dead_letters(notifier, "invalid") - invalids == 1  # (committed: its letter acknowledged)
    assert await sample(notifier.client, "stopline_warning_decisions_total", decision="invalid") == decided


async def test_an_alert_whose_payments_sum_past_the_columns_is_invalid(infra, notifier):
    """200 payments of the largest valid amount: the warning's amount at risk would be their sum, which no
    NUMERIC(15, 2) holds. Refused at decoding ("invalid", the field and why), not retried until set aside
    as unhandled; its person is not warned, the alert after it is."""
    poisoned, after = f.phone(), f.phone()
    at = f.now()
    payments = [
        AlertPayment(event_ref=f"bank-a:{f.unique('t')}", amount=Decimal("999999999999.99"), occurred_at=at)
        for _ in range(MAX_PAYMENTS)
    ]
    poison = notifier.make_alert(poisoned, payments=payments).model_dump_json().encode()
    letter = await _set_aside_before(infra, notifier, poison, after)
    assert (letter["reason"], letter["detail"]) == (
        b"invalid",
        b"payments: Value error, their sum is 10^13 or more, past what the consumers' NUMERIC(15, 2) holds",
    )
    assert not messages_to(notifier.sms.receiver, poisoned)
