"""Delivery through gateways that are down, slow or failing: bounded retries, one message, dead letter."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from services.kit.audit.models import AuditEntry
from services.kit.db import unit_of_work
from services.kit.sealing import Sealer
from services.notifier.delivery import repository
from services.notifier.delivery.channels import Channels
from services.notifier.delivery.models import Delivery
from services.notifier.delivery.worker import DeliveryWorker
from services.notifier.settings import NotifierSettings
from tests import factories as f
from tests.kafka_tools import eventually
from tests.notifier.helpers import deliveries_for, desk_task_for, messages_to

pytestmark = pytest.mark.integration


async def _status(sessions, phone, *wanted) -> bool:
    ds = await deliveries_for(sessions, phone)
    return bool(ds) and all(d.status in wanted for d in ds)


async def test_gateway_down_then_back_gets_the_message_once(notifier, sessions):
    phone = f.phone()
    await notifier.sms.down()
    try:
        await notifier.alert(phone)
        # The first attempt fails (connection refused) and a retry is scheduled, within the bound.
        await eventually(lambda: _attempted(sessions, phone), timeout_s=20)
    finally:
        await notifier.sms.up()
    await eventually(lambda: _status(sessions, phone, "delivered"), timeout_s=10)
    [d] = await deliveries_for(sessions, phone)
    assert 2 <= d.attempts <= notifier.settings.max_attempts
    assert len(messages_to(notifier.sms.receiver, phone)) == 1


async def _attempted(sessions, phone) -> bool:
    ds = await deliveries_for(sessions, phone)
    return bool(ds) and ds[0].attempts >= 1 and ds[0].last_error is not None


async def test_gateway_down_for_good_dead_letters_and_the_desk_calls(notifier, sessions):
    phone = f.phone()
    await notifier.sms.down()
    try:
        await notifier.alert(phone)
        await eventually(lambda: _status(sessions, phone, "dead"), timeout_s=20)
    finally:
        await notifier.sms.up()
    [d] = await deliveries_for(sessions, phone)
    assert d.attempts == notifier.settings.max_attempts
    assert d.sealed_body is None and d.last_error
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    assert task.reason == "undelivered"
    # Dead means no later surprise delivery: a warning to someone else, alerted after, is delivered
    # (the worker has made its rounds since), and still nothing reached this person.
    marker = f.phone()
    await notifier.alert(marker)
    await eventually(lambda: messages_to(notifier.sms.receiver, marker), timeout_s=20)
    assert messages_to(notifier.sms.receiver, phone) == []

    # The desk: one operator takes the call; nobody else can take or close it.
    desk_subject = f.unique("desk")
    desk, other = f.officer("operator", sub=desk_subject), f.officer("operator")
    queue = (await notifier.client.get("/v1/desk/tasks", headers=desk)).json()["items"]
    mine = next(t for t in queue if t["phone"] == phone)
    auditor = await notifier.client.post(f"/v1/desk/tasks/{mine['id']}/take", headers=f.officer("auditor"))
    assert auditor.status_code == 403
    assert (await notifier.client.post(f"/v1/desk/tasks/{mine['id']}/take", headers=desk)).status_code == 200
    assert (await notifier.client.post(f"/v1/desk/tasks/{mine['id']}/take", headers=other)).status_code == 409
    close = {"outcome": "not_reached", "note": "no answer, two tries"}
    stolen = await notifier.client.post(f"/v1/desk/tasks/{mine['id']}/close", json=close, headers=other)
    assert stolen.status_code == 403
    done = await notifier.client.post(f"/v1/desk/tasks/{mine['id']}/close", json=close, headers=desk)
    assert done.status_code == 200 and done.json()["outcome"] == "not_reached"
    # Both are in the audit chain: who took and closed the call, with the outcome and note.
    async with sessions() as s:
        stmt = select(AuditEntry).where(AuditEntry.entity_id == mine["id"]).order_by(AuditEntry.id)
        entries = list((await s.execute(stmt)).scalars())
    assert [(e.action, e.actor, e.actor_role) for e in entries] == [
        ("desk.taken", desk_subject, "operator"),
        ("desk.closed", desk_subject, "operator"),
    ]
    assert entries[1].after is not None
    assert entries[1].after["outcome"] == "not_reached" and entries[1].after["note"] == close["note"]
    assert entries[1].after["warning_id"] == str(mine["warning_id"]) and phone not in str(entries[1].after)
    assert (await notifier.client.get("/v1/desk/tasks")).status_code == 401


async def test_slow_gateway_times_out_then_the_retry_lands_once(notifier, sessions):
    phone = f.phone()
    notifier.sms.receiver.behaviour.delay_s = notifier.settings.send_timeout_s + 0.5
    try:
        await notifier.alert(phone)
        await eventually(lambda: _attempted(sessions, phone), timeout_s=20)
    finally:
        notifier.sms.receiver.behaviour.delay_s = 0.0
    await eventually(lambda: _status(sessions, phone, "delivered"), timeout_s=10)
    [d] = await deliveries_for(sessions, phone)
    assert d.attempts >= 2 and "Timeout" in (d.last_error or "")  # the last error is kept for the record
    # The slow first request did reach the gateway; the retry carried the same id and was not re-sent.
    assert len(messages_to(notifier.sms.receiver, phone)) == 1


async def test_gateway_errors_are_retried_with_backoff(notifier, sessions):
    phone = f.phone()
    notifier.sms.receiver.behaviour.fail_next = 2  # two 503s (another test's message may take one)
    await notifier.alert(phone)
    await eventually(lambda: _status(sessions, phone, "delivered"), timeout_s=20)
    [d] = await deliveries_for(sessions, phone)
    assert 2 <= d.attempts <= notifier.settings.max_attempts
    assert d.last_error and "503" in d.last_error
    assert len(messages_to(notifier.sms.receiver, phone)) == 1


async def test_a_gateway_slow_to_finish_its_answer_is_cut_at_the_send_timeout(notifier, sessions):
    """httpx's timeout bounds each read, not the send: an answer a byte at a time (each within it) would
    keep the send past the worker's lease, and another worker would send the message again."""
    phone = f.phone()
    behaviour = notifier.sms.receiver.behaviour
    behaviour.trickle_s = notifier.settings.send_timeout_s / 4  # 10 bytes: 2.5 times the timeout
    behaviour.receipt = None  # (a receipt would settle the message before the attempt's outcome)
    try:
        await notifier.alert(phone)
        await eventually(lambda: _attempted(sessions, phone), timeout_s=20)
    finally:
        behaviour.trickle_s, behaviour.receipt = 0.0, "delivered"
    [d] = await deliveries_for(sessions, phone)
    assert f"Timeout: no answer within {notifier.settings.send_timeout_s} s" == d.last_error
    # The gateway had taken it: the retry carries the same id, is acknowledged and not sent again.
    await eventually(lambda: _status(sessions, phone, "sent"), timeout_s=10)
    assert len(messages_to(notifier.sms.receiver, phone)) == 1


async def test_a_sender_whose_lease_ran_out_does_not_set_back_a_newer_claim(notifier, sessions):
    phone = f.phone()
    await notifier.alert(phone)
    await eventually(lambda: _status(sessions, phone, "delivered"), timeout_s=20)
    [d] = await deliveries_for(sessions, phone)
    # The row as another worker's claim leaves it: its third attempt, leased far ahead.
    async with unit_of_work(sessions) as s:
        values = {"status": "sending", "attempts": 3, "next_attempt_at": f.now() + timedelta(hours=1)}
        await s.execute(update(Delivery).where(Delivery.id == d.id).values(**values))
    retry = {"status": "pending", "next_attempt_at": f.now(), "last_error": "late"}
    async with unit_of_work(sessions) as s:  # the second claim's late failure: not recorded
        assert not await repository.finish_attempt(s, delivery_id=d.id, attempt=2, values=retry)
    [now] = await deliveries_for(sessions, phone)
    assert (now.status, now.attempts, now.last_error) == ("sending", 3, d.last_error)
    async with unit_of_work(sessions) as s:  # its late success is: the gateway has the message
        sent = {"status": "sent", "sent_at": f.now(), "sealed_body": None}
        assert await repository.finish_attempt(s, delivery_id=d.id, attempt=2, values=sent)
    [now] = await deliveries_for(sessions, phone)
    assert now.status == "sent"


async def test_a_message_no_configured_key_opens_fails_alone(sessions):
    """Sealed under a key rotated out and no longer configured: that attempt fails with a reason (before,
    it raised out of the whole round, whose other sends went out unrecorded); with the former key set as
    the previous one, it opens."""
    settings = NotifierSettings()
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    async with httpx.AsyncClient() as client:
        worker = DeliveryWorker(sessions, settings, Channels(settings, client), Sealer(new))
        d = Delivery(id=uuid.uuid4(), channel="sms", attempts=1)
        d.sealed_body = Sealer(old).seal(b"{}", context=d.id.bytes)
        attempt = await worker._send(d)
    assert (attempt.ok, attempt.error) == (False, "sealed body cannot be opened with the payload key")
    rotated = NotifierSettings(payload_key=new, payload_key_previous=old)
    assert rotated.payload_sealer().open(d.sealed_body, context=d.id.bytes) == b"{}"


async def test_a_call_taken_and_left_goes_back_to_the_queue_by_a_supervisor(notifier, sessions):
    """An operator took a call and left (their shift ended): another operator cannot take it, a
    supervisor puts it back in the queue, and someone else takes and makes it."""
    phone = f.phone()
    await notifier.alert(phone, score=0.99)  # over the desk's threshold: a high-risk call back
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=20)
    gone, other = f.officer("operator"), f.officer("operator")
    path = f"/v1/desk/tasks/{task.id}"
    assert (await notifier.client.post(f"{path}/take", headers=gone)).status_code == 200
    assert (await notifier.client.post(f"{path}/release", headers=other)).status_code == 403
    chief = f.unique("chief")
    released = await notifier.client.post(f"{path}/release", headers=f.officer("supervisor", sub=chief))
    assert released.status_code == 200 and released.json()["status"] == "open"
    assert released.json()["taken_by"] is None
    assert (await notifier.client.post(f"{path}/release", headers=other)).status_code == 409  # not taken
    assert (await notifier.client.post(f"{path}/take", headers=other)).status_code == 200
    async with sessions() as s:
        stmt = select(AuditEntry).where(AuditEntry.entity_id == str(task.id)).order_by(AuditEntry.id)
        actions = [(e.action, e.actor) for e in (await s.execute(stmt)).scalars()]
    assert actions[1] == ("desk.released", chief)
