"""Warnings end to end on the real Kafka, PostgreSQL and local HTTP gateways."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from services.kit.audit.models import AuditEntry
from services.notifier import signing
from services.notifier.cases import CoordinationCases
from services.notifier.warnings import service
from services.notifier.warnings.models import CitizenWarning
from streams import keys, topics
from streams.producer import Record
from tests import factories as f
from tests.kafka_tools import eventually
from tests.metrics import sample
from tests.notifier.helpers import (
    alerts_joined,
    deliveries_for,
    desk_closes,
    desk_task_for,
    desk_tasks_for,
    messages_to,
    token_in,
    warnings_for,
)

pytestmark = pytest.mark.integration


async def test_one_warning_per_episode_signed_delivered_with_receipt(notifier, sessions):
    phone = f.phone()
    first = await notifier.alert(phone)
    call = first.triggering_event_ids[0]
    await notifier.alert(phone, call=call)  # a second transfer in the same scam call
    await notifier.producer.send_all([])  # nothing; the alerts are acknowledged already
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    # Both alerts are handled (each joined in the transaction that handled it): whatever deliveries they
    # made exist, and all are delivered.
    assert await _delivered(sessions, phone)
    warnings = await warnings_for(sessions, phone)
    assert len(warnings) == 1
    assert warnings[0].first_delivered_at is not None
    sent = messages_to(notifier.sms.receiver, phone)
    assert len(sent) == 1  # one message, not one per alert
    assert "反诈预警" in str(sent[0]["text"])  # Mandarin when no language is known
    assert warnings[0].token_sha256 != token_in(str(sent[0]["text"]))  # only a hash is stored
    assert [d.channel for d in await deliveries_for(sessions, phone)] == ["sms"]  # no app: no push


async def _delivered(sessions, phone) -> bool:
    ds = await deliveries_for(sessions, phone)
    return bool(ds) and all(d.status == "delivered" and d.sealed_body is None for d in ds)


async def _count_joined(sessions, phone, n) -> bool:
    return len(await alerts_joined(sessions, phone)) == n


async def test_language_and_app_push_from_the_telecom(notifier, sessions):
    _, telecom = await f.institution(sessions, "telecom")
    _, bank = await f.institution(sessions, "bank")
    phone = f.phone()
    body = {"phone": phone, "language": "ug", "push_id": "app-123"}
    assert (await notifier.client.put("/v1/contacts", json=body, headers=bank)).status_code == 403
    assert (await notifier.client.put("/v1/contacts", json=body, headers=telecom)).status_code == 204
    await notifier.alert(phone)
    await eventually(lambda: _delivered_on(sessions, phone, 2), timeout_s=20)
    sms = messages_to(notifier.sms.receiver, phone)
    push = messages_to(notifier.push.receiver, "app-123")
    assert len(sms) == 1 and len(push) == 1
    assert sms[0]["language"] == "ug" and "ئاگاھلاندۇرۇش" in str(sms[0]["text"])
    assert push[0]["answer_url"] and "/a/" in str(push[0]["answer_url"])


async def _delivered_on(sessions, phone, n) -> bool:
    ds = await deliveries_for(sessions, phone)
    return len(ds) == n and all(d.status == "delivered" for d in ds)


async def test_a_revision_of_the_alert_warns_no_one_again(notifier, sessions):
    """The episode's next payment comes as revision 2 of the same alert: the person was warned already."""
    phone = f.phone()
    alert = await notifier.alert(phone)
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    grown = alert.model_copy(update={"revision": 2, "amount_at_risk": "60000.00"})
    await notifier.producer.send_all(
        [
            Record(
                topics.name(topics.ALERTS, notifier.prefix),
                grown.model_dump_json().encode(),
                keys.person_key(phone),
            )
        ]
    )
    await notifier.alert(phone)  # a barrier behind it on the same partition: another episode, joined
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    assert len(await warnings_for(sessions, phone)) == 1
    assert len(messages_to(notifier.sms.receiver, phone)) == 1
    assert sorted(a.joined for a in await alerts_joined(sessions, phone)) == ["created", "rate_limit"]


async def test_a_redelivered_alert_writes_nothing_to_its_warning(notifier, sessions):
    """Kafka delivers an alert again (a retried batch, a rebalance): its payments are kept already, so
    receiving it again leaves the warning's row as it was, not even rewritten with the same values."""
    phone = f.phone()
    alert = await notifier.alert(phone)
    [warning] = await eventually(lambda: warnings_for(sessions, phone), timeout_s=10)
    async with sessions() as s, s.begin():
        await service.receive(
            s,
            alerts=[alert],
            settings=notifier.settings,
            sealer=notifier.settings.payload_sealer(),
            bridge=CoordinationCases(unit=notifier.settings.case_unit),
            now=datetime.now(UTC),
        )
        # Another writer (a delivery receipt) may change the row meanwhile; only this transaction's is asked.
        stmt = text("select xmin = pg_current_xact_id()::xid from citizen_warnings where id = :id")
        assert (await s.execute(stmt, {"id": warning.id})).scalar_one() is False
    [after] = await warnings_for(sessions, phone)
    assert after.amount_at_risk == Decimal("30000.00")


async def test_a_riskier_revision_or_episode_puts_the_person_on_the_desks_queue(notifier, sessions):
    """The warning's first alert scored under the desk's threshold; the episode's next payment (revision 2)
    scores over it: the person is called back, as if the first had. A second episode within the rate
    limit, riskier still, raises the same task."""
    phone = f.phone()
    alert = await notifier.alert(phone, score=0.8)
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    assert await desk_task_for(sessions, phone) is None
    risky = alert.model_copy(update={"revision": 2, "score": 0.97, "amount_at_risk": "90000.00"})
    record = Record(
        topics.name(topics.ALERTS, notifier.prefix), risky.model_dump_json().encode(), keys.person_key(phone)
    )
    await notifier.producer.send_all([record])
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    assert (task.reason, task.priority, task.status) == ("high_risk", 0.97, "open")

    await notifier.alert(phone, score=0.99)  # another episode minutes later: joins by the rate limit
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    again = await desk_task_for(sessions, phone)
    assert again is not None and (again.id, again.priority) == (task.id, 0.99)
    assert len(await warnings_for(sessions, phone)) == 1


async def test_a_late_calls_revision_shows_the_desk_the_call(notifier, sessions):
    """The transfer alerted on its own and the person was warned; the call they paid during, reported when
    it ended, comes as revision 2, call_then_transfer and riskier: no second warning, and the desk calls
    back knowing it was a call."""
    phone = f.phone()
    alert = await notifier.alert(phone, typology="suspicious_payment")
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    called = alert.model_copy(update={"revision": 2, "typology": "call_then_transfer", "score": 0.97})
    record = Record(
        topics.name(topics.ALERTS, notifier.prefix), called.model_dump_json().encode(), keys.person_key(phone)
    )
    await notifier.producer.send_all([record])
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    assert (task.reason, task.priority) == ("high_risk", 0.97)
    (warning,) = await warnings_for(sessions, phone)
    assert warning.typology == "call_then_transfer"
    assert len(messages_to(notifier.sms.receiver, phone)) == 1


async def test_a_riskier_alert_raises_an_undelivered_call_and_keeps_why(notifier, sessions):
    """Nothing got through to the person (the desk calls because of that); a later alert riskier still
    raises the call's priority, and the desk still sees that the warning never reached them. The same
    alert again changes nothing."""
    phone = f.phone()
    await notifier.sms.down()
    try:
        await notifier.alert(phone, score=0.8)  # under the desk's threshold: the desk calls as it failed
        task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=20)
    finally:
        await notifier.sms.up()
    assert task.reason == "undelivered" and task.priority < 0.99
    riskier = await notifier.alert(phone, score=0.99)  # another episode, within the rate limit
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    raised = await desk_task_for(sessions, phone)
    assert raised is not None and (raised.reason, raised.priority) == ("undelivered", 0.99)
    record = Record(
        topics.name(topics.ALERTS, notifier.prefix),
        riskier.model_dump_json().encode(),
        keys.person_key(phone),
    )
    await notifier.producer.send_all([record])
    await notifier.alert(phone, score=0.5)  # a barrier behind it on the same partition
    await eventually(lambda: _count_joined(sessions, phone, 3), timeout_s=10)
    async with sessions() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.entity_id == str(task.id)).order_by(AuditEntry.id)
        assert list((await s.execute(stmt)).scalars()) == ["desk.raised"]  # once: the redelivery did nothing


async def test_a_second_episode_soon_after_is_rate_limited(notifier, sessions):
    phone = f.phone()
    await notifier.alert(phone)
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    await notifier.alert(phone)  # another scam call minutes later
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    assert len(await warnings_for(sessions, phone)) == 1
    joined = sorted(a.joined for a in await alerts_joined(sessions, phone))
    assert joined == ["created", "rate_limit"]


async def test_a_new_risky_episode_after_the_desk_dissuaded_the_person_is_warned_and_called_again(
    notifier, sessions
):
    """The desk called the person and closed the call as dissuaded; minutes later, within the rate limit,
    a new scam call and transfer score high again. The settled warning does not swallow it: the person is
    warned again and the desk calls again."""
    phone = f.phone()
    await notifier.alert(phone, score=0.97)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=20)
    await desk_closes(notifier.client, task.id, f.officer("operator"), outcome="dissuaded")

    await notifier.alert(phone, score=0.98)  # another scam call, another large transfer
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    assert sorted(a.joined for a in await alerts_joined(sessions, phone)) == ["created", "created"]
    first, second = sorted(await warnings_for(sessions, phone), key=lambda w: w.created_at)
    assert (first.status, first.outcome, second.status) == ("closed", "dissuaded", "open")
    tasks = await desk_tasks_for(sessions, phone)
    assert [(t.warning_id, t.reason, t.status, t.priority) for t in tasks] == [
        (first.id, "high_risk", "closed", 0.97),
        (second.id, "high_risk", "open", 0.98),
    ]
    await eventually(lambda: len(messages_to(notifier.sms.receiver, phone)) == 2, timeout_s=20)


async def test_a_new_episode_after_the_person_answered_safe_is_warned_again(notifier, sessions):
    """A scammer coaching the victim to tap "I am safe", then calling again: the answered warning does not
    swallow the new episode. It is warned, and unanswered it goes to the desk, as any warning."""
    phone = f.phone()
    await notifier.alert(phone)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    token = token_in(str(sms[0]["text"]))
    assert (await notifier.client.post(f"/v1/answers/{token}", json={"answer": "safe"})).status_code == 200

    await notifier.alert(phone)  # minutes later, within the rate limit
    await eventually(lambda: _count_joined(sessions, phone, 2), timeout_s=10)
    first, second = sorted(await warnings_for(sessions, phone), key=lambda w: w.created_at)
    assert (first.status, first.answer, second.status) == ("answered", "safe", "open")
    await eventually(lambda: len(messages_to(notifier.sms.receiver, phone)) == 2, timeout_s=20)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=15)
    assert (task.warning_id, task.reason) == (second.id, "unanswered")


async def test_an_episode_scored_while_the_person_answers_is_warned_on_its_own(notifier, sessions):
    """The person taps "I am safe" while their next transfer, a new episode within the rate limit, is being
    received: the answer holds the warning's row; receiving waits for it, then sees the warning answered
    and warns the person of the new episode instead of joining it."""
    phone = f.phone()
    await notifier.alert(phone)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    bridge = CoordinationCases(unit=notifier.settings.case_unit)
    now = datetime.now(UTC)
    next_episode = notifier.make_alert(phone)
    backend: list[int] = []

    async def receiving() -> None:
        async with sessions() as s, s.begin():
            backend.append((await s.execute(text("select pg_backend_pid()"))).scalar_one())
            await service.receive(
                s,
                alerts=[next_episode],
                settings=notifier.settings,
                sealer=notifier.settings.payload_sealer(),
                bridge=bridge,
                now=now,
            )

    async with sessions() as answering, answering.begin():
        token = token_in(str(sms[0]["text"]))
        await service.answer(answering, token=token, answer="safe", bridge=bridge, now=now)
        received = asyncio.create_task(receiving())
        await eventually(lambda: _waits_for_a_lock(sessions, backend), timeout_s=10)
    await received

    first, second = sorted(await warnings_for(sessions, phone), key=lambda w: w.created_at)
    assert (first.answer, second.status, second.first_alert_id) == ("safe", "open", next_episode.alert_id)
    assert sorted(a.joined for a in await alerts_joined(sessions, phone)) == ["created", "created"]


async def _waits_for_a_lock(sessions, backend: list[int]) -> bool:
    if not backend:
        return False
    async with sessions() as s:
        stmt = text("select count(*) from pg_locks where pid = :pid and not granted")
        return bool((await s.execute(stmt, {"pid": backend[0]})).scalar_one())


async def test_answer_link_is_single_use_expires_and_reveals_nothing(notifier, sessions):
    phone = f.phone()
    await notifier.alert(phone)
    await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    token = token_in(str(messages_to(notifier.sms.receiver, phone)[0]["text"]))
    page = await notifier.client.get(f"/a/{token}")
    assert page.status_code == 200 and phone not in page.text  # opening the link uses nothing
    first = await notifier.client.post(f"/v1/answers/{token}", json={"answer": "safe"})
    assert first.status_code == 200, first.text
    assert not f.shows_phone(first.text, phone)
    again = await notifier.client.post(f"/v1/answers/{token}", json={"answer": "safe"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "token_used"
    unknown = await notifier.client.post(f"/v1/answers/{token[:-2]}xx", json={"answer": "safe"})
    assert unknown.status_code == 404
    [warning] = await warnings_for(sessions, phone)
    assert warning.answer == "safe" and warning.outcome == "dissuaded"

    late = f.phone()
    await notifier.alert(late)
    await eventually(lambda: messages_to(notifier.sms.receiver, late), timeout_s=20)
    late_token = token_in(str(messages_to(notifier.sms.receiver, late)[0]["text"]))
    async with sessions() as s, s.begin():  # time passes: the link's validity ends
        await s.execute(
            update(CitizenWarning)
            .where(CitizenWarning.phone == late)
            .values(token_expires_at=CitizenWarning.created_at)
        )
    expired = await notifier.client.post(f"/v1/answers/{late_token}", json={"answer": "safe"})
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "token_expired"
    [late_warning] = await warnings_for(sessions, late)
    assert late_warning.answer is None


async def test_defrauded_after_safe_is_taken_once_and_replaces_the_outcome(notifier, sessions):
    """A mis-tap, or a scammer's coaching undone: "I am safe", then "I am being defrauded" through the same
    link. The later answer counts: the desk calls at once, the outcome says the money went, and the change
    is audited. The link takes nothing more, and never "safe" after "defrauded"."""
    phone = f.phone()
    await notifier.alert(phone)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    token = token_in(str(sms[0]["text"]))
    for answer in ("safe", "defrauded"):
        answered = await notifier.client.post(f"/v1/answers/{token}", json={"answer": answer})
        assert answered.status_code == 200, answered.text
    for answer in ("safe", "defrauded"):
        again = await notifier.client.post(f"/v1/answers/{token}", json={"answer": answer})
        assert again.status_code == 409 and again.json()["error"]["code"] == "token_used"
    [warning] = await warnings_for(sessions, phone)
    assert (warning.answer, warning.outcome) == ("defrauded", "reached_too_late")
    assert warning.case_id is not None
    task = await desk_task_for(sessions, phone)
    assert task is not None and (task.reason, task.priority, task.status) == ("high_risk", 1.0, "open")
    async with sessions() as s:
        stmt = select(AuditEntry).where(AuditEntry.entity_id == str(warning.id))
        [entry] = (await s.execute(stmt)).scalars()
    assert (entry.action, entry.actor_role) == ("warning.outcome_replaced", "citizen")
    assert (entry.before["answer"], entry.before["outcome"]) == ("safe", "dissuaded")
    assert (entry.after["answer"], entry.after["outcome"]) == ("defrauded", "reached_too_late")


async def test_high_risk_goes_to_the_phone_desk_at_once(notifier, sessions):
    phone = f.phone()
    await notifier.alert(phone, score=0.97)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=20)
    assert task.reason == "high_risk"


async def test_unanswered_warning_goes_to_the_desk(notifier, sessions):
    phone = f.phone()
    await notifier.alert(phone)
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=15)
    assert task.reason == "unanswered"


async def test_receipts_must_be_signed(notifier, sessions):
    body = b'{"message_id": "00000000-0000-0000-0000-000000000000", "status": "delivered"}'
    unsigned = await notifier.client.post("/v1/receipts/sms", content=body)
    assert unsigned.status_code == 401
    forged = await notifier.client.post(
        "/v1/receipts/sms",
        content=body,
        headers={"X-Stopline-Timestamp": "1700000000", "X-Stopline-Signature": "v1=00"},
    )
    assert forged.status_code == 401
    # Digits to str.isdigit() that int() refuses ("²", read from the header as Latin-1), and too many.
    for stamp in (b"\xb2", b"1" * 5000):
        odd = await notifier.client.post(
            "/v1/receipts/sms",
            content=body,
            headers={"X-Stopline-Timestamp": stamp, "X-Stopline-Signature": "v1=00"},
        )
        assert odd.status_code == 401, odd.text
    not_ascii = await notifier.client.post(
        "/v1/receipts/sms",
        content=body,
        headers={"X-Stopline-Timestamp": str(int(time.time())), "X-Stopline-Signature": b"v1=\xff"},
    )
    assert not_ascii.status_code == 401, not_ascii.text


async def test_a_malformed_receipt_names_its_fields_as_every_422_does(notifier):
    """Signed, but not a receipt: refused naming each field under `body.`, as every route does."""
    body = b'{"message_id": "not-a-uuid", "status": "delivered", "at": 1796628300}'
    headers = signing.headers(notifier.settings.sms_secret, int(time.time()), body)
    refused = await notifier.client.post("/v1/receipts/sms", content=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["body.message_id", "body.at"]


async def test_metrics_count_a_changed_answer_once_and_the_change_apart(notifier, sessions):
    """The person taps "I am safe", then "I am being defrauded" through the same link: one warning answered,
    so one answer and one outcome, each its first; the change is counted on its own label."""
    series = [
        ("stopline_warning_answers_total", {"answer": "safe"}),
        ("stopline_warning_answers_total", {"answer": "defrauded"}),
        ("stopline_warning_answers_total", {"answer": "safe_then_defrauded"}),
        ("stopline_warning_outcomes_total", {"outcome": "dissuaded"}),
        ("stopline_warning_outcomes_total", {"outcome": "reached_too_late"}),
        ("stopline_warning_outcomes_total", {"outcome": "dissuaded_then_reached_too_late"}),
    ]
    before = await _samples(notifier, series)
    phone = f.phone()
    await notifier.alert(phone)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    token = token_in(str(sms[0]["text"]))
    for answer in ("safe", "defrauded"):
        answered = await notifier.client.post(f"/v1/answers/{token}", json={"answer": answer})
        assert answered.status_code == 200, answered.text
    assert await _increase(notifier, series, before) == [1, 0, 1, 1, 0, 1]


async def test_metrics_count_a_warning_from_alert_to_answer(notifier, sessions):
    series = [
        ("stopline_warning_decisions_total", {"decision": "created"}),
        ("stopline_warning_deliveries_total", {"channel": "sms", "result": "sent"}),
        ("stopline_warning_deliveries_total", {"channel": "sms", "result": "delivered"}),
        ("stopline_warning_event_to_sent_seconds_count", {"channel": "sms"}),
        ("stopline_warning_event_to_delivered_seconds_count", {"channel": "sms"}),
        ("stopline_warning_answers_total", {"answer": "safe"}),
        ("stopline_warning_outcomes_total", {"outcome": "dissuaded"}),
    ]
    before = await _samples(notifier, series)
    phone = f.phone()
    await notifier.alert(phone)
    await eventually(lambda: _delivered(sessions, phone), timeout_s=20)
    token = token_in(str(messages_to(notifier.sms.receiver, phone)[0]["text"]))
    assert (await notifier.client.post(f"/v1/answers/{token}", json={"answer": "safe"})).status_code == 200
    assert await _increase(notifier, series, before) == [1, 1, 1, 1, 1, 1, 1]


Series = list[tuple[str, dict[str, str]]]


async def _samples(notifier, series: Series) -> list[float]:
    return [await sample(notifier.client, name, **labels) for name, labels in series]


async def _increase(notifier, series: Series, before: list[float]) -> list[float]:
    return [a - b for a, b in zip(await _samples(notifier, series), before, strict=True)]
