"""Delivery of instructions: a relay killed between publishing and marking sent does not publish again
(the survivor reads the topic back); a topic that cannot be read back holds up only its own messages; a
webhook receiver that is down and comes back gets each instruction once; a queued message wakes the relay
loop of its channel only, also after the relay's LISTEN connection was cut."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka.errors import ProducerFenced
from sqlalchemy import delete, func, select, text, update

from services.coordination.delivery import relay as relay_module
from services.coordination.delivery import repository, signing
from services.coordination.delivery.backlog import OutboxBacklog
from services.coordination.delivery.models import OutboxMessage
from services.coordination.delivery.relay import Relay
from services.coordination.settings import CoordinationSettings
from services.institutions.models import Institution
from services.kit.audit.models import AuditEntry
from services.kit.db import unit_of_work
from streams import admin, topics
from tests import factories as f
from tests.conftest import plain_dsn
from tests.coordination.conftest import FAST, App, bank, issue, lapse_now, open_case, respond, stop_issued
from tests.coordination.receiver import Receiver
from tests.kafka_tools import eventually, read_topic
from tests.metrics import sample

# These tests run their own relays.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("relays_paused")]


class Killed(Exception):
    pass


async def _die(_: object) -> None:
    raise Killed("relay process killed after the broker acknowledged")


async def _stop_payment(coord: App, sessions) -> tuple[dict[str, str], str, dict[str, Any]]:
    """An officer's headers, a Kafka bank, and a stop-payment issued to it (queued in the outbox)."""
    op = f.officer()
    inst, _, _, stop = await stop_issued(coord, sessions, op, "8000.00")
    return op, inst, stop


async def test_relay_killed_after_publish_does_not_publish_twice(infra, coord, sessions):
    op, inst, stop = await _stop_payment(coord, sessions)
    settings = CoordinationSettings(**{**FAST, "relay_lease_s": 1.0})

    crashing = Relay(infra.common, settings, sessions, after_publish=_die)
    await crashing.open_clients()
    with pytest.raises(Killed):
        await crashing.kafka_once()
    await crashing.producer.stop()

    async def row() -> OutboxMessage:
        async with sessions() as s:
            query = select(OutboxMessage).where(OutboxMessage.message_id == stop["id"])
            return (await s.execute(query)).scalar_one()

    assert (await row()).sent_at is None  # the crash came before the mark

    # Once the dead relay's lease lapses, the survivor reads the topic back, finds the message there and
    # marks it sent without publishing it again.
    survivor = Relay(infra.common, settings, sessions)
    await survivor.open_clients()
    try:
        await eventually(survivor.kafka_once, timeout_s=20)
    finally:
        await survivor.producer.stop()
    assert (await row()).sent_at is not None  # nothing is published after this

    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    assert await _keys_on(infra, topic) == [stop["id"]]
    got = (await coord.client.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert got["status"] == "delivered"


async def test_a_message_kafka_never_takes_is_given_up_and_holds_up_nothing(infra, coord, sessions):
    # Two messages for one bank in one relay batch; the second is larger than a Kafka request may be, so
    # Kafka's producer would refuse it for ever, and the batch's transaction with it. It is given up at
    # once (dead, with the reason); the first is published and marked sent. Once, the first was marked sent
    # with the second (lost); later, both were tried again at every round.
    _, inst, stop = await _stop_payment(coord, sessions)
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    await admin.ensure_topic(infra.kafka, topics.instructions_for(inst), infra.prefix)
    oversized = f"{stop['id']}-big"
    async with sessions() as s, s.begin():
        s.add(
            OutboxMessage(
                message_id=oversized,
                channel="kafka",
                topic=topic,
                key=stop["id"],
                payload={"padding": "x" * (2 * 1024 * 1024)},  # over the producer's 1 MiB request size
            )
        )
    dead_before = await sample(coord.client, "stopline_outbox_dead_total", channel="kafka")
    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    await relay.open_clients()
    try:
        await relay.kafka_once()
    finally:
        await relay.producer.stop()
    async with sessions() as s:
        found = await s.execute(
            select(OutboxMessage).where(OutboxMessage.message_id.in_([stop["id"], oversized]))
        )
        rows = {r.message_id: r for r in found.scalars()}
    assert rows[stop["id"]].sent_at is not None
    assert rows[oversized].sent_at is None
    assert rows[oversized].dead_at is not None
    assert "larger than a Kafka request may be" in (rows[oversized].last_error or "")
    assert await sample(coord.client, "stopline_outbox_dead_total", channel="kafka") == dead_before + 1
    assert await _keys_on(infra, topic) == [stop["id"]]


async def test_a_topic_kafka_will_not_make_holds_up_only_its_own_messages(
    infra, coord, sessions, monkeypatch
):
    # One relay batch: a stop-payment to a bank, and messages to institutions whose topic Kafka refuses to
    # make. Once, the refusal failed the whole batch (other banks' instructions, escalations), again at
    # every round. A refusal for good (here an invalid name) gives its message up; one that may pass (too
    # few brokers up for the replication) holds it back, known not to be on Kafka, tried again in seconds.
    _, inst, stop = await _stop_payment(coord, sessions)
    never = topics.name(topics.instructions_for("bank!refused"), infra.prefix)
    later = topics.name(topics.instructions_for(f.unique("bank-later")), infra.prefix)
    async with sessions() as s, s.begin():
        for name, topic in (("never", never), ("later", later)):
            s.add(OutboxMessage(message_id=f"{stop['id']}-{name}", channel="kafka", topic=topic, payload={}))
    create_missing = admin.create_missing

    async def too_few_brokers_for_later(client: Any, wanted: Any, prefix: str, **kw: Any) -> list[str]:
        passing = {later: "InvalidReplicationFactorError: 3 replicas, 2 brokers up"}
        try:
            await create_missing(client, [t for t in wanted if topics.name(t, prefix) != later], prefix, **kw)
        except admin.TopicRefused as exc:
            raise admin.TopicRefused({**exc.refused, **passing}, exc.lasting) from exc
        raise admin.TopicRefused(passing, set())

    monkeypatch.setattr(admin, "create_missing", too_few_brokers_for_later)
    held_before = await sample(coord.client, "stopline_outbox_held_total")
    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    await relay.open_clients()
    try:
        assert await relay.kafka_once() >= 1
    finally:
        await relay.producer.stop()
    async with sessions() as s:
        rows = {
            r.topic: r
            for r in (
                await s.execute(select(OutboxMessage).where(OutboxMessage.topic.in_([never, later])))
            ).scalars()
        }
        now = (await s.execute(select(func.now()))).scalar_one()
    assert await _sent(sessions, stop["id"])
    assert await _keys_on(infra, topics.name(topics.instructions_for(inst), infra.prefix)) == [stop["id"]]
    given_up, waiting = rows[never], rows[later]
    assert given_up.dead_at is not None and "InvalidTopicError" in (given_up.last_error or "")
    assert waiting.sent_at is None and waiting.dead_at is None
    assert waiting.last_error == repository.NOT_ON_KAFKA
    assert now < waiting.next_attempt_at  # tried again at a later round
    assert await sample(coord.client, "stopline_outbox_held_total") == held_before + 1
    async with sessions() as s, s.begin():  # not tried again by the relays of the tests after this one
        dead = update(OutboxMessage).where(OutboxMessage.id == waiting.id).values(dead_at=func.now())
        await s.execute(dead)


async def test_a_relay_taking_over_a_lapsed_lease_fences_the_attempt_still_in_flight(infra, coord, sessions):
    # A relay published a stop-payment and waits for Kafka: its transaction is open, not committed. It
    # could not renew its lease (the database was down), so the lease lapsed and another relay takes the
    # row over. The message is not on the topic yet; the other relay must publish it only once the first
    # attempt can no longer land: it fences the first relay's producer, then reads back, then publishes.
    # (What an earlier round noted, "not on Kafka", must not spare the first relay the fence.)
    _, inst, stop = await _stop_payment(coord, sessions)
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    await admin.ensure_topic(infra.kafka, topics.instructions_for(inst), infra.prefix)
    settings = CoordinationSettings(**{**FAST, "relay_lease_s": 4.0})
    first, other = Relay(infra.common, settings, sessions), Relay(infra.common, settings, sessions)
    await first.open_clients()
    await other.open_clients()
    try:
        async with sessions() as s, s.begin():  # an earlier round left it known not to be on Kafka
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.message_id == stop["id"])
                .values(attempts=1, last_error=repository.NOT_ON_KAFKA)
            )
        async with sessions() as s, s.begin():
            rows = await repository.claim(s, channel="kafka", limit=500, lease=timedelta(seconds=4))
        (row,) = [r for r in rows if r.message_id == stop["id"]]
        first_claim = repository.claim_of(row)
        async with sessions() as s, s.begin():
            noted = await repository.publish_as(
                s, [first_claim], publisher=first.publisher, lease=timedelta(seconds=4)
            )
            assert noted == {row.id}
        held = first.producer._producer  # noqa: SLF001 - a transaction held open, as Kafka's answer is
        await held.begin_transaction()
        sent = await held.send(
            topic,
            orjson.dumps(row.payload),
            key=(row.key or "").encode(),
            headers=[(signing.IDEMPOTENCY_KEY, row.message_id.encode())],
        )
        await asyncio.wait_for(sent, 10)  # on the partition, not committed
        async with sessions() as s, s.begin():  # the lease lapses
            lapsed = func.now() - timedelta(seconds=1)
            await s.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(next_attempt_at=lapsed)
            )
        fenced_before = await sample(coord.client, "stopline_relay_fenced_total")

        assert await other.kafka_once() >= 1
        assert await _sent(sessions, stop["id"])
        assert await sample(coord.client, "stopline_relay_fenced_total") == fenced_before + 1
        with pytest.raises(ProducerFenced):  # the first attempt can no longer be committed
            await held.commit_transaction()
        # Nor may the first relay publish it again: its claim was taken over.
        assert await first._publish([row], [first_claim]) == (set(), set())
    finally:
        await first.producer.stop()
        await other.producer.stop()
    assert await _keys_on(infra, topic) == [stop["id"]]  # as a consumer reading committed records sees it


async def test_a_relay_waiting_for_kafka_renews_its_lease_soon_after_the_database_answers_again(
    infra, coord, sessions
):
    # A relay waits for Kafka's answer to its publication; the database refuses the renewal due at a
    # third of the lease and answers again right after. The renewal must come within about a second, not
    # a third of a lease later: a lease that lapses meanwhile lets another relay fence the publication,
    # which is then aborted and made again.
    _, _, stop = await _stop_payment(coord, sessions)
    lease = timedelta(seconds=12.0)
    settings = CoordinationSettings(**{**FAST, "relay_lease_s": lease.total_seconds()})
    relay = Relay(infra.common, settings, sessions)
    async with sessions() as s, s.begin():  # published: leased, Kafka has not answered
        rows = await repository.claim(s, channel="kafka", limit=500, lease=lease)
        (row,) = [r for r in rows if r.message_id == stop["id"]]
        await repository.publish_as(s, [repository.claim_of(row)], publisher=relay.publisher, lease=lease)

    refused = asyncio.Event()
    database_up = True

    def flaky_sessions() -> Any:
        if not database_up:
            refused.set()
            raise ConnectionRefusedError("the database is restarting")
        return sessions()

    async def lease_end() -> datetime:
        async with sessions() as s:
            query = select(OutboxMessage.next_attempt_at).where(OutboxMessage.id == row.id)
            return (await s.execute(query)).scalar_one()

    relay.sessions = flaky_sessions  # type: ignore[assignment]
    kafka_answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    database_up = False
    waiting = asyncio.create_task(relay._renew_while_waiting(kafka_answer, [repository.claim_of(row)]))
    try:
        await asyncio.wait_for(refused.wait(), timeout=lease.total_seconds())  # the renewal at a third
        before = await lease_end()
        database_up = True

        async def renewed() -> bool:
            return await lease_end() > before

        # The next renewal at a steady beat would come 4 s after the refused one.
        await eventually(renewed, timeout_s=2.5, every_s=0.1)
    finally:
        kafka_answer.set_result(None)
        await asyncio.wait_for(waiting, timeout=5)


async def test_a_topic_not_read_back_holds_up_only_its_own_messages(infra, coord, sessions):
    _, inst, stop = await _stop_payment(coord, sessions)
    # Beside it, a message tried before on a topic coordination may write but not read (as `escalations`
    # once was): whether that attempt landed cannot be known, so it must be neither sent again nor
    # forgotten, and the instruction must not wait for it.
    unreadable = topics.name(topics.BLOCKLIST, infra.prefix)
    odd_id = f.unique("odd")
    await admin.ensure_topic(infra.kafka, topics.instructions_for(inst), infra.prefix)  # as a first try does
    async with sessions() as s, s.begin():
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.message_id == stop["id"])
            .values(attempts=1, last_error=repository.NOT_ON_KAFKA)
        )
        s.add(
            OutboxMessage(
                message_id=odd_id, channel="kafka", topic=unreadable, key="k", payload={}, attempts=1
            )
        )

    settings = CoordinationSettings(**FAST)
    await _relayed(infra, sessions, stop["id"], settings)

    async with sessions() as s:
        odd = (await s.execute(select(OutboxMessage).where(OutboxMessage.message_id == odd_id))).scalar_one()
        now = (await s.execute(select(func.now()))).scalar_one()
    assert odd.sent_at is None
    # Leased, not claimed again at once: looked at again when the lease lapses.
    assert odd.next_attempt_at > now + timedelta(seconds=settings.relay_lease_s / 2)
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    assert await _keys_on(infra, topic) == [stop["id"]]
    on_unreadable = await read_topic(infra.kafka, unreadable)
    keys = {dict(r.headers or ()).get(signing.IDEMPOTENCY_KEY, b"").decode() for r in on_unreadable}
    assert odd_id not in keys


async def test_a_message_whose_first_try_failed_making_its_topic_is_sent_once_kafka_makes_it(
    infra, coord, sessions
):
    """The first attempt claimed the row and failed creating the institution's topic (Kafka away): the next
    finds no such topic to read back, so nothing landed, and publishes it (making the topic)."""
    _, inst, stop = await _stop_payment(coord, sessions)
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    async with admin.admin_client(infra.kafka) as client:  # a new institution's: never made
        assert topic not in await client.list_topics()
    async with sessions() as s, s.begin():
        await s.execute(
            update(OutboxMessage).where(OutboxMessage.message_id == stop["id"]).values(attempts=1)
        )
    await _relayed(infra, sessions, stop["id"], CoordinationSettings(**FAST))
    assert await _keys_on(infra, topic) == [stop["id"]]


async def _relayed(infra, sessions, message_id: str, settings: CoordinationSettings) -> None:
    """A relay's rounds until the message is marked sent."""
    relay = Relay(infra.common, settings, sessions)
    await relay.open_clients()

    async def sent() -> bool:
        await relay.kafka_once()
        return await _sent(sessions, message_id)

    try:
        await eventually(sent, timeout_s=20)
    finally:
        await relay.producer.stop()


async def _keys_on(infra, topic: str) -> list[str]:
    """The idempotency keys of the records on the topic (committed), in order."""
    return [dict(r.headers)[signing.IDEMPOTENCY_KEY].decode() for r in await read_topic(infra.kafka, topic)]


async def _sent(sessions, message_id: str) -> bool:
    async with sessions() as s:
        query = select(OutboxMessage.sent_at).where(OutboxMessage.message_id == message_id)
        return (await s.execute(query)).scalar_one() is not None


async def _stops_by_webhook(
    coord: App, sessions, op: dict[str, str], receiver: Receiver, n: int
) -> tuple[str, dict[str, str], str, list[dict[str, Any]]]:
    """A bank taking instructions by webhook at `receiver` (its secret set there), its API key, a case,
    and `n` stop-payments of 1,000 CNY issued to it."""
    inst, key, secret = await bank(sessions, kafka=False, webhook_url=receiver.url)
    assert secret is not None
    receiver.secret = secret
    accounts = [f.account("MULE") for _ in range(n)]
    case_id = await open_case(coord.client, op, *[(inst, a, "1000.00") for a in accounts])
    stop = {"kind": "stop_payment", "amount": "1000.00", "institution_id": inst}
    return inst, key, case_id, [await issue(coord.client, op, case_id, account=a, **stop) for a in accounts]


async def test_webhook_down_then_back_gets_each_instruction_once(infra, coord, sessions):
    op = f.officer()
    receiver = Receiver(secret="")
    inst, _, _, issued = await _stops_by_webhook(coord, sessions, op, receiver, 3)
    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    await relay.start()
    try:

        async def attempted() -> bool:
            async with sessions() as s:
                rows = (
                    await s.execute(select(OutboxMessage).where(OutboxMessage.institution_id == inst))
                ).scalars()
                return all(r.attempts >= 2 and r.last_error for r in rows)

        await eventually(attempted, timeout_s=10)  # the receiver was down: attempts failed and back off
        await receiver.start()
        await eventually(lambda: len(receiver.processed) == 3, timeout_s=10)

        async def all_sent() -> bool:
            async with sessions() as s:
                rows = (
                    await s.execute(select(OutboxMessage).where(OutboxMessage.institution_id == inst))
                ).scalars()
                return all(r.sent_at is not None for r in rows)

        await eventually(all_sent, timeout_s=10)  # marked sent: no row is claimed again
    finally:
        await relay.stop()  # and no call is still in flight
        await receiver.stop()
    assert sorted(receiver.raw) == sorted(i["id"] for i in issued)  # no resend after the receiver's 200
    assert receiver.bad_signatures == 0
    for i in issued:
        got = (await coord.client.get(f"/v1/instructions/{i['id']}", headers=op)).json()
        assert got["status"] == "delivered"


async def _dead_webhooks(sessions) -> int:
    async with sessions() as s:
        stmt = select(func.count()).where(
            OutboxMessage.channel == "webhook", OutboxMessage.dead_at.is_not(None)
        )
        return int((await s.execute(stmt)).scalar_one())


async def test_the_backlog_and_the_dead_letters_are_measured(infra, coord, sessions):
    op = f.officer()
    receiver = Receiver(secret="")  # never started: the bank's endpoint does not answer
    inst, _, _ = await bank(sessions, kafka=False, webhook_url=receiver.url)
    account = f.account("MULE")
    case_id = await open_case(coord.client, op, (inst, account, "1000.00"))
    await issue(
        coord.client, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="1000.00"
    )
    async with sessions() as s:
        stmt = select(OutboxMessage.id, OutboxMessage.created_at).where(OutboxMessage.institution_id == inst)
        row_id, queued = (await s.execute(stmt)).one()

    # Waiting (the relays are paused): counted, and the oldest is at least as old as this one.
    waited = (datetime.now(UTC) - queued).total_seconds()
    await OutboxBacklog(sessions, interval_s=60).once()
    assert await sample(coord.client, "stopline_outbox_pending", channel="webhook") >= 1
    assert await sample(coord.client, "stopline_outbox_oldest_pending_seconds", channel="webhook") >= waited

    # Given up after its last attempt: a dead letter, counted once per row given up.
    dead_rows, dead_count = (
        await _dead_webhooks(sessions),
        await sample(coord.client, "stopline_outbox_dead_total", channel="webhook"),
    )
    relay = Relay(infra.common, CoordinationSettings(**{**FAST, "webhook_max_attempts": 2}), sessions)
    await relay.start()
    try:

        async def given_up() -> bool:
            async with sessions() as s:
                stmt = select(OutboxMessage.dead_at).where(OutboxMessage.id == row_id)
                return (await s.execute(stmt)).scalar_one() is not None

        await eventually(given_up, timeout_s=10)
    finally:
        await relay.stop()
    given_up_rows = await _dead_webhooks(sessions) - dead_rows
    assert given_up_rows >= 1
    counted = await sample(coord.client, "stopline_outbox_dead_total", channel="webhook") - dead_count
    assert counted == given_up_rows


async def test_a_webhook_url_httpx_refuses_is_given_up_after_its_attempts_not_retried_for_ever(
    infra, coord, sessions
):
    """A URL stored before configuration checked it: each attempt fails (counted), the last gives it up."""
    op = f.officer()
    inst, _, _ = await bank(sessions, kafka=False, webhook_url="https://bank.example/hook")
    async with unit_of_work(sessions) as s:
        await s.execute(
            update(Institution).where(Institution.id == inst).values(webhook_url="http://b.example:8o80/")
        )
    account = f.account("MULE")
    case_id = await open_case(coord.client, op, (inst, account, "1000.00"))
    await issue(
        coord.client, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="1000.00"
    )
    relay = Relay(infra.common, CoordinationSettings(**{**FAST, "webhook_max_attempts": 2}), sessions)
    await relay.start()
    try:

        async def given_up() -> OutboxMessage | None:
            async with sessions() as s:
                stmt = select(OutboxMessage).where(
                    OutboxMessage.institution_id == inst, OutboxMessage.dead_at.is_not(None)
                )
                return (await s.execute(stmt)).scalar_one_or_none()

        dead = await eventually(given_up, timeout_s=15)
    finally:
        await relay.stop()
    assert dead.attempts == 2 and (dead.last_error or "").startswith("InvalidURL")


async def test_an_instruction_given_up_that_reached_its_bank_takes_the_banks_answer(infra, coord, sessions):
    """The last webhook attempt takes the instruction, then answers slower than the relay's timeout (a
    byte at a time, each within httpx's own read timeout): the whole call is cut at the timeout, the
    message is dead after exactly its attempts, the instruction fails; the bank, which had it, executes
    it and answers, and the answer is applied, not refused. Once the same hold is issued again, a late
    answer to the failed one is kept and audited beside it."""
    op = f.officer()
    # The whole call is cut at the timeout, which the test waits out: shorter than the shared apps' 2 s.
    settings = CoordinationSettings(**{**FAST, "webhook_max_attempts": 1, "webhook_timeout_s": 1.0})
    receiver = Receiver(secret="", trickle_s=settings.webhook_timeout_s / 4)
    inst, key, case_id, stops = await _stops_by_webhook(coord, sessions, op, receiver, 2)
    relay = Relay(infra.common, settings, sessions)
    await receiver.start()
    await relay.start()
    try:

        async def failed() -> bool:
            statuses = [
                (await coord.client.get(f"/v1/instructions/{s['id']}", headers=op)).json()["status"]
                for s in stops
            ]
            return statuses == ["failed", "failed"]

        await eventually(failed, timeout_s=15)
    finally:
        await relay.stop()
        await receiver.stop()
    assert sorted(receiver.raw) == sorted(s["id"] for s in stops)  # one attempt each: the bound
    async with sessions() as s:
        mine = (OutboxMessage.institution_id == inst) & (OutboxMessage.channel == "webhook")
        rows = (await s.execute(select(OutboxMessage).where(mine))).scalars()
        timed_out = f"Timeout: no answer within {settings.webhook_timeout_s} s"
        assert {(r.attempts, r.last_error) for r in rows} == {(1, timed_out)}

    answered = await respond(coord.client, key, stops[0]["id"], "executed", held_amount="1000.00")
    assert answered.status_code == 200 and answered.json()["status"] == "executed"

    failed_stop = {k: stops[1][k] for k in ("kind", "institution_id", "account", "amount")}
    again = await issue(coord.client, op, case_id, **failed_stop)
    late = await respond(coord.client, key, stops[1]["id"], "executed", held_amount="1000.00")
    assert late.status_code == 200 and late.json()["status"] == "failed"
    async with sessions() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.entity_id == stops[1]["id"]).order_by(AuditEntry.id)
        assert (await s.execute(stmt)).scalars().all()[-1] == "instruction.answered_after_failure"
    held = (await coord.client.get(f"/v1/instructions/{again['id']}", headers=op)).json()
    assert held["status"] in ("issued", "delivered")  # the hold in force is the one issued again
    # The bank is told the first is cancelled, so the hold it placed under it is lifted.
    async with sessions() as s:
        stmt = select(OutboxMessage.message_id).where(OutboxMessage.instruction_id == stops[1]["id"])
        assert f"{stops[1]['id']}:cancelled" in set((await s.execute(stmt)).scalars())


async def _lapsed_with_its_notice_given_up(
    infra: Any, coord: App, sessions: Any, *, kafka: bool
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A bank whose webhook is unreachable (and maybe a Kafka topic too); its stop-payment executed, then
    lapsed; a relay runs until the lapse notice's webhook copy is given up and its Kafka copy, if any, is
    done with. (headers, case, stop)"""
    op = f.officer()
    _, key, case_id, stop = await stop_issued(
        coord, sessions, op, "3000.00", kafka=kafka, webhook_url="http://127.0.0.1:9/hook"
    )
    assert (
        await respond(coord.client, key, stop["id"], "executed", held_amount="3000.00")
    ).status_code == 200
    await lapse_now(coord, sessions, op, stop)
    relay = Relay(infra.common, CoordinationSettings(**{**FAST, "webhook_max_attempts": 2}), sessions)
    await relay.start()
    try:

        async def given_up() -> OutboxMessage | None:
            """The webhook copy given up (and the Kafka copy, if any, no longer waiting)."""
            async with sessions() as s:
                stmt = select(OutboxMessage).where(OutboxMessage.message_id == f"{stop['id']}:expired")
                rows = {r.channel: r for r in (await s.execute(stmt)).scalars()}
            settled = all(r.sent_at or r.dead_at for r in rows.values())
            hook = rows.get("webhook")
            return hook if settled and hook is not None and hook.dead_at is not None else None

        dead = await eventually(given_up, timeout_s=20)

        async def escalation_out() -> bool:
            """The escalation queued with the giving up, if any, is out too: this relay may have taken it,
            and stopped with it in hand the app's relay would wait out its lease before sending it."""
            async with sessions() as s:
                stmt = select(OutboxMessage.sent_at).where(
                    OutboxMessage.message_id == f"{stop['id']}:notice_expired"
                )
                return all(sent is not None for sent in (await s.execute(stmt)).scalars())

        await eventually(escalation_out, timeout_s=20)
    finally:
        await relay.stop()
    assert dead.attempts == 2
    return op, case_id, stop


async def _actions(sessions: Any, entity_id: str) -> list[str]:
    async with sessions() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.entity_id == entity_id).order_by(AuditEntry.id)
        return list((await s.execute(stmt)).scalars())


async def test_a_notice_no_channel_delivers_is_escalated(infra, coord, sessions):
    """A webhook bank unreachable when its stop-payment lapses: the bank is never told and may hold the
    money on, while Stopline counts it free. The notice, given up after its attempts, is escalated (once,
    on the escalations topic) and audited; the stop stays lapsed."""
    op, case_id, stop = await _lapsed_with_its_notice_given_up(infra, coord, sessions, kafka=False)
    escalation = f"{stop['id']}:notice_expired"

    def ours(records: list[Any]) -> list[Any]:
        # (other tests share the topic: a message of theirs may have no escalation id)
        return [m for m in (orjson.loads(r.value) for r in records) if m.get("escalation_id") == escalation]

    topic = topics.name(topics.ESCALATIONS, infra.prefix)
    [message] = ours(await read_topic(infra.kafka, topic, until=lambda rs: bool(ours(rs)), timeout_s=20))
    assert (message["stage"], message["instruction_id"], message["case_id"]) == (
        "notice_expired",
        stop["id"],
        case_id,
    )
    assert (await _actions(sessions, stop["id"]))[-1] == "instruction.notice_failed"
    held = (await coord.client.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert held["status"] == "expired"


async def test_a_notice_its_kafka_topic_took_is_not_escalated_when_its_webhook_fails(infra, coord, sessions):
    """The same bank also reads its Kafka topic, which took the notice: the bank has it, nothing to tell."""
    _, _, stop = await _lapsed_with_its_notice_given_up(infra, coord, sessions, kafka=True)
    # The escalation would have been queued in the transaction that gave the webhook copy up.
    async with sessions() as s:
        stmt = select(OutboxMessage.sent_at).where(
            OutboxMessage.message_id == f"{stop['id']}:expired", OutboxMessage.channel == "kafka"
        )
        assert (await s.execute(stmt)).scalar_one() is not None
        escalations = select(func.count()).where(OutboxMessage.message_id == f"{stop['id']}:notice_expired")
        assert (await s.execute(escalations)).scalar_one() == 0
    assert "instruction.notice_failed" not in await _actions(sessions, stop["id"])


async def test_the_first_webhook_retry_waits_the_first_retry_delay(infra, coord, sessions):
    """`webhook_backoff_s` is the first retry's delay (doubled each attempt after): it was half of it."""
    op = f.officer()
    inst, _, _, _ = await stop_issued(
        coord, sessions, op, "1000.00", kafka=False, webhook_url="http://127.0.0.1:9/hook"
    )
    settings = CoordinationSettings(
        **{**FAST, "webhook_backoff_s": 20.0, "webhook_backoff_max_s": 60.0, "webhook_max_attempts": 5}
    )
    relay = Relay(infra.common, settings, sessions)
    await relay.start()
    try:

        async def failed_once() -> OutboxMessage | None:
            async with sessions() as s:
                stmt = select(OutboxMessage).where(OutboxMessage.institution_id == inst)
                row = (await s.execute(stmt)).scalar_one_or_none()
                return row if row is not None and row.attempts == 1 and row.last_error else None

        row = await eventually(failed_once, timeout_s=15, every_s=0.05)
        seen = datetime.now(UTC)
    finally:
        await relay.stop()
    # 16-24 s (20 s, jittered) after the attempt, which failed before `seen` (10 s at most before: 8-12 s).
    assert (row.next_attempt_at - seen).total_seconds() > 13


def test_signature_covers_timestamp_and_body():
    body = b'{"a":1}'
    headers = signing.headers("s3cret", body, "m-1", now=1_000_000)
    assert signing.verify("s3cret", headers, body, now=1_000_010)
    assert not signing.verify("s3cret", headers, b'{"a":2}', now=1_000_010)
    assert not signing.verify("other", headers, body, now=1_000_010)
    assert not signing.verify("s3cret", headers, body, now=1_000_000 + 3600)  # replayed later


async def test_a_queued_message_wakes_only_the_relay_loop_of_its_channel(infra, coord, sessions):
    heard: list[str] = []
    listener = await asyncpg.connect(plain_dsn(infra.database_url), timeout=10)
    await listener.add_listener(repository.CHANNEL, lambda *args: heard.append(args[3]))
    try:
        op = f.officer()
        kafka_only, _, _ = await bank(sessions)
        with_webhook, _, _ = await bank(sessions, webhook_url="http://127.0.0.1:9/hook")
        for inst in (kafka_only, with_webhook):
            account = f.account("MULE")
            case_id = await open_case(coord.client, op, (inst, account, "100.00"))
            await issue(
                coord.client,
                op,
                case_id,
                kind="stop_payment",
                institution_id=inst,
                account=account,
                amount="100.00",
            )
        await eventually(lambda: {"kafka", "kafka,webhook"} <= set(heard))
    finally:
        await listener.close()

    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    woken = {}
    for payload in ("kafka", "webhook", "kafka,webhook", ""):
        for wake in relay._wake.values():
            wake.clear()
        relay._notified(None, 0, repository.CHANNEL, payload)
        woken[payload] = sorted(c for c, wake in relay._wake.items() if wake.is_set())
    assert woken == {
        "kafka": ["kafka"],
        "webhook": ["webhook"],
        "kafka,webhook": ["kafka", "webhook"],
        "": ["kafka", "webhook"],  # a bare NOTIFY, as older writers send: both look
    }


async def test_the_database_wakes_the_relays_for_any_insert_once_per_statement(infra, coord, sessions):
    # The wake-up is the outbox's own trigger, not a call the inserting code must remember: rows put in by
    # hand (a repair, a process of another release) wake the relays too, one notification a statement
    # naming its channels. Due in an hour, so no relay takes them meanwhile; removed again at the end.
    heard: list[str] = []
    listener = await asyncpg.connect(plain_dsn(infra.database_url), timeout=10)
    await listener.add_listener(repository.CHANNEL, lambda *args: heard.append(args[3]))
    ids = [f.unique("by-hand") for _ in range(3)]
    try:
        async with sessions() as s, s.begin():
            await s.execute(
                text(
                    "insert into outbox (message_id, channel, topic, payload, next_attempt_at) values "
                    "(:a, 'webhook', null, '{}', now() + interval '1 hour'), "
                    "(:b, 'kafka', 'by-hand', '{}', now() + interval '1 hour'), "
                    "(:c, 'kafka', 'by-hand', '{}', now() + interval '1 hour')"
                ),
                dict(zip("abc", ids, strict=True)),
            )
        async with sessions() as s, s.begin():
            await s.execute(text("select pg_notify(:c, 'marker')"), {"c": repository.CHANNEL})
        # Notifications come in commit order: once the marker is heard, the insert's has come, if any.
        await eventually(lambda: "marker" in heard)
    finally:
        await listener.close()
        async with sessions() as s, s.begin():
            await s.execute(delete(OutboxMessage).where(OutboxMessage.message_id.in_(ids)))
    assert "kafka,webhook" in heard[: heard.index("marker")]  # (one statement's rows, one notification)


async def test_the_relay_listens_again_after_its_connection_is_cut(infra, coord, sessions, monkeypatch):
    # How often the relay looks at its LISTEN connection: a cut one is made again up to that late (2 s,
    # most of the test's time); that it is made again is what is tested, not how soon.
    monkeypatch.setattr(relay_module, "LISTEN_RETRY_S", 0.5)
    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    heard: list[str] = []
    original = relay._notified

    def notified(*args: Any) -> None:  # what the listener is told, whichever connection it is on
        heard.append(args[3])
        original(*args)

    relay._notified = notified  # type: ignore[method-assign,assignment]
    listeners = text(
        "select pid from pg_stat_activity where datname = current_database() and query like 'LISTEN %'"
    )

    async def listening() -> list[int]:
        async with sessions() as s:
            return list((await s.execute(listeners)).scalars())

    others = set(await listening())  # other relays' (the shared app's), left alone

    async def ours(but: set[int]) -> list[int]:
        return [pid for pid in await listening() if pid not in but]

    await relay.start()
    try:
        first = await eventually(lambda: ours(others), timeout_s=20)
        async with sessions() as s:  # as a database restart does to it
            await s.execute(text("select pg_terminate_backend(:pid)"), {"pid": first[0]})
        again = await eventually(lambda: ours(others | set(first)), timeout_s=20)
        assert len(again) == 1
        async with sessions() as s, s.begin():
            await s.execute(text(f"notify {repository.CHANNEL}, 'kafka'"))
        await eventually(lambda: "kafka" in heard, timeout_s=10)
    finally:
        await relay.stop()
