"""After the faults: wait for the system to settle, then check from Kafka and the database that every
acknowledged item is where it should be, and how often it got there.

Per path: `items` acknowledged, `lost` (acknowledged, not found), `doubled` (extra copies a consumer or
receiver met; on a topic whose consumer drops repeats by id these are counted, not failures) and
`doubled_undeduplicated` (extra copies that nothing downstream drops: must be 0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.chaos.stack import ANSWER_TIMEOUT_S, PREFIX
from deploy.chaos.traffic import IDEMPOTENCY_KEY, KAFKA_BANKS, SILENT_BANK, Ledger
from services.kit.audit.service import verify
from streams import groups, keys, topics
from streams.admin import admin_client
from streams.connection import KafkaConnection

log = logging.getLogger(__name__)

LOOK_S = 30.0  # the longest one look at the lag or the database may take while settling
SCHEDULER_GRACE_S = 10.0  # the jobs run every 0.5-1 s in the suite


async def read_all(kafka: KafkaConnection, topic: str, timeout_s: float = 300) -> list[ConsumerRecord]:
    """Every record of the topic, from its start to its end as it is now."""
    deadline = time.monotonic() + timeout_s
    consumer = AIOKafkaConsumer(
        **kafka.options(), group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )  # as the receivers read: the records of an aborted transaction (a fenced relay's) are not there
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - topics made since the start
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[ConsumerRecord] = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end in {timeout_s:.0f}s")
            for recs in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def lag(kafka: KafkaConnection, prefix: str = PREFIX) -> dict[str, int]:
    """Records not yet committed by each consumer group of the prefix (summed over its partitions; only
    groups with some)."""
    async with admin_client(kafka) as admin:
        groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(prefix)]
        by_group = await _group_offsets(admin, [g for g in groups if "scorer-blocklist" not in g])
    # Per group: several groups read the same topic (alerts: coordination, notifier, the persons stage).
    committed = {(group, tp): o for group, offsets in by_group.items() for tp, o in offsets.items() if o >= 0}
    if not committed:
        return {}
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=None, isolation_level="read_committed")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list({tp for _, tp in committed}))
        behind: Counter[str] = Counter()
        for (group, tp), offset in committed.items():
            if ends[tp] > offset and await _records_after(consumer, tp, offset, ends[tp]):
                behind[group.removeprefix(prefix)] += ends[tp] - offset
    finally:
        await consumer.stop()
    return dict(behind)


async def _records_after(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int) -> bool:
    """Whether a record a consumer receives lies between `offset` and `end`. A consumer commits the
    offset after the last record it handled, so a partition written in transactions (the outbox relay's
    topics) ends, at rest, one commit marker (and any aborted records) past it: no lag."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    while await consumer.position(tp) < end:
        if (await consumer.getmany(tp, timeout_ms=200)).get(tp):
            return True
    return False


async def settle(
    kafka: KafkaConnection, sessions: async_sessionmaker[AsyncSession], *, timeout_s: float
) -> dict[str, Any]:
    """Wait until every group's lag is 0 and nothing is left to send (outbox, warnings, claims)."""
    began = time.monotonic()
    lag_zero_s = None
    behind: dict[str, int] | None = None
    pending: dict[str, int] = {}
    while time.monotonic() - began < timeout_s:
        try:  # each look bounded: a node or the database that does not answer is not settled
            behind = await asyncio.wait_for(lag(kafka), LOOK_S)
            if not behind and lag_zero_s is None:
                lag_zero_s = round(time.monotonic() - began, 1)
            pending = await asyncio.wait_for(_pending(sessions), LOOK_S)
        except Exception:  # noqa: BLE001 - looked at again in a moment
            log.warning("settling: a look failed", exc_info=True)
            await asyncio.sleep(2)
            continue
        if not behind and not any(pending.values()):
            return {"lag_zero_after_s": lag_zero_s, "settled_after_s": round(time.monotonic() - began, 1)}
        await asyncio.sleep(2)
    return {"lag_zero_after_s": lag_zero_s, "settled_after_s": None, "left": {"lag": behind, **pending}}


async def _pending(sessions: async_sessionmaker[AsyncSession], *, grace_s: float = 0.0) -> dict[str, int]:
    """What is left to send, and the scheduled jobs' items due for more than `grace_s`."""
    queries = {
        "outbox": "select count(*) from outbox where sent_at is null and dead_at is null",
        "warning_deliveries": (
            "select count(*) from warning_deliveries where status in ('pending', 'sending')"
        ),
        "ingest_claims": "select count(*) from ingested_events where pending_until is not null",
        # Scheduled jobs' due items not handled yet: unanswered instructions past their acknowledgement
        # deadline, holds past their period, listed numbers past their time, warnings past their answer time.
        "escalations_due": (
            "select count(*) from instructions where status in ('issued', 'delivered') "
            "and ack_due_at <= now() - make_interval(secs => :grace_s) and overdue is null"
        ),
        "holds_due": (
            "select count(*) from instructions where kind in ('stop_payment', 'freeze') and status in ("
            "'issued', 'delivered', 'acknowledged', 'executed', 'partially_executed') "
            "and expires_at <= now() - make_interval(secs => :grace_s)"
        ),
        "blocklist_due": (
            "select count(*) from blocklist_entries where status = 'active' "
            "and expires_at <= now() - make_interval(secs => :grace_s)"
        ),
        "desk_due": (
            "select count(*) from citizen_warnings w where w.status = 'open' "
            "and w.created_at < now() - make_interval(secs => :desk_s) "
            "and not exists (select 1 from desk_tasks t where t.warning_id = w.id)"
        ),
        "blocklist_unpublished": (
            "select count(*) from blocklist_entries e where e.version > "
            "coalesce((select published_version from blocklist_feed), 0)"
        ),
    }
    given = {"desk_s": float(ANSWER_TIMEOUT_S + grace_s), "grace_s": float(grace_s)}
    found = {}
    async with sessions() as s:
        for name, sql in queries.items():
            bound = {k: v for k, v in given.items() if f":{k}" in sql}
            found[name] = int((await s.execute(text(sql), bound)).scalar_one())
    return found


def _path(items: int, lost: int, doubled: int, undeduplicated: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "items": items,
        "lost": lost,
        "doubled": doubled,
        "doubled_undeduplicated": undeduplicated,
        **extra,
    }


async def check(
    kafka: KafkaConnection, sessions: async_sessionmaker[AsyncSession], ledger: Ledger
) -> dict[str, Any]:
    paths: dict[str, Any] = {}

    # Events: every one answered 200 is on its event topic; a copy beyond the first is dropped by the
    # scorer (it skips event ids it has seen).
    seen: Counter[tuple[str, str]] = Counter()
    by_person: dict[bytes, list[list[Any]]] = {}  # where each person's events are: a missed scam's trail
    for topic in topics.EVENT_TOPICS.values():
        for record in await read_all(kafka, topics.name(topic, PREFIX)):
            envelope = orjson.loads(record.value or b"{}")
            event = envelope.get("event", {})
            seen[(envelope.get("institution"), event.get("event_id"))] += 1
            by_person.setdefault(record.key or b"", []).append(
                [event.get("type"), event.get("event_id"), record.partition, record.offset, record.timestamp]
            )
    mine = {k: n for k, n in seen.items() if k in ledger.events}
    lost_events = sorted(ledger.events.keys() - mine.keys())
    paths["events"] = _path(
        len(ledger.events),
        len(lost_events),
        sum(n - 1 for n in mine.values()),
        batches=ledger.batches,
        lost_sample=await _claims_of(sessions, lost_events[:20], ledger),
    )

    # Alerts: every alert (revision) on the topic is stored, once; repeats are dropped by their id.
    # Each alert's records: (partition, offset, revision); and the alerts that ask to warn the citizen.
    where: dict[str, list[tuple[int, int, int]]] = {}
    made: dict[str, list[tuple[int, tuple[str, ...]]]] = {}  # each record's revision and payments
    to_warn: set[str] = set()
    alerted: set[str] = set()  # the people alerts name
    for record in await read_all(kafka, topics.name(topics.ALERTS, PREFIX)):
        alert = orjson.loads(record.value or b"{}")
        alerted.add(str((alert.get("subject") or {}).get("phone")))
        revision = int(alert.get("revision", 1))
        where.setdefault(alert["alert_id"], []).append((record.partition, record.offset, revision))
        refs = tuple(sorted(p["event_ref"] for p in alert.get("payments", [])))
        made.setdefault(alert["alert_id"], []).append((revision, refs))
        if "warn_citizen" in alert.get("recommended_actions", []):
            to_warn.add(alert["alert_id"])
    latest = {alert_id: max(rev for _, _, rev in records) for alert_id, records in where.items()}
    # A copy: the same revision of an alert on the topic more than once. Two revisions 1 with other
    # payments (a victim's two payees scored at once, docs/alerts.md) are both the alert's, not copies.
    alert_copies = sum(len(records) - len(set(records)) for records in made.values())
    async with sessions() as s:
        stored = {str(r[0]): int(r[1]) for r in await s.execute(text("select id, revision from alerts"))}
        warned = {str(r[0]) for r in await s.execute(text("select alert_id from citizen_warning_alerts"))}
        sent = [
            str(r[0])
            for r in await s.execute(text("select id from warning_deliveries where sent_at is not null"))
        ]
        responses = {
            str(r[0]) for r in await s.execute(text("select response_id from instruction_responses"))
        }
        instructions = {
            str(r[0]): r[1]
            for r in await s.execute(text("select id, status from instructions where case_id is not null"))
        }
        verdict = await verify(s)
    lost_alerts = [a for a, rev in latest.items() if stored.get(a, 0) < rev]
    missed = sorted(ledger.scams.keys() - alerted)
    kinds = Counter(ledger.scams.values())
    kinds_alerted = Counter(kind for victim, kind in ledger.scams.items() if victim in alerted)
    paths["alerts"] = _path(
        len(latest),
        len(lost_alerts),
        alert_copies,
        lost_sample=[
            {"alert": a, "stored_revision": stored.get(a), "records": where[a]} for a in lost_alerts[:10]
        ],
        committed=await _committed(kafka, (groups.COORDINATION_ALERTS, groups.NOTIFIER_ALERTS))
        if lost_alerts
        else {},
        # Detection under faults, told apart from delivery (a scorer that skips a scam loses nothing the
        # checks above count): the traffic's scams (a long call from an unknown number or a SIM change,
        # then 30,000 CNY to a new payee: `traffic.scam_events`) whose victim an alert names.
        scams=len(ledger.scams),
        scams_alerted=sum(kinds_alerted.values()),
        scams_by_kind={kind: {"scams": n, "alerted": kinds_alerted[kind]} for kind, n in kinds.items()},
        scams_missed_sample={v: ledger.scams[v] for v in missed[:10]},  # the victims' (made-up) numbers
        scams_missed_trail=await _trails(kafka, missed[:10], by_person) if missed else {},
    )

    # Warnings: every alert that asks to warn the citizen joined a warning; every delivery the notifier
    # marked sent reached the gateway (repeats are dropped by the gateway, by message id).
    lost_deliveries = [d for d in sent if ledger.sms[d] == 0]
    paths["warnings"] = _path(
        len(to_warn),
        len(to_warn - warned) + len(lost_deliveries),
        sum(n - 1 for n in ledger.sms.values() if n > 1),
        deliveries=len(sent),
    )

    # Instructions: every one issued (201) is stored and reached its bank; a bank drops repeats by message id.
    issued = set(ledger.instructions)
    copies: Counter[str] = Counter()
    for bank in KAFKA_BANKS:
        for record in await read_all(kafka, topics.name(topics.instructions_for(bank), PREFIX)):
            copies[dict(record.headers or ()).get(IDEMPOTENCY_KEY, b"").decode()] += 1
    unreached = [i for i in issued if ledger.received[i] == 0]
    paths["instructions"] = _path(
        len(issued),
        len(issued - set(instructions)) + len(unreached),
        sum(n - 1 for i, n in ledger.received.items() if i in issued and n > 1),
        statuses=dict(Counter(instructions[i] for i in issued if i in instructions)),
        kafka_topic_copies_beyond_first=sum(n - 1 for n in copies.values() if n > 1),
    )

    # Scheduled jobs: every stop-payment the silent bank never answered is escalated, once (both
    # coordination instances run the scheduler); no escalation reaches the topic twice (none is dropped).
    escalations: Counter[str] = Counter()
    for record in await read_all(kafka, topics.name(topics.ESCALATIONS, PREFIX)):
        escalations[orjson.loads(record.value or b"{}")["escalation_id"]] += 1
    silent = [i for i, bank in ledger.instructions.items() if bank == SILENT_BANK]
    paths["escalations"] = _path(
        len(silent),
        len([i for i in silent if escalations[f"{i}:acknowledgement"] == 0]),
        sum(n - 1 for n in escalations.values()),
        sum(n - 1 for n in escalations.values()),
        escalations=len(escalations),
    )

    # Answers: every answer the banks got acknowledged (by Kafka or the API) is stored, once (by response
    # id); an answer given after its stop-payment's hold had ended is refused by design (counted apart).
    lapsed = await _lapsed(sessions)
    unstored = {r: ledger.answers[r] for r in set(ledger.answers) - responses}
    late = [
        r for r, (instruction, at) in unstored.items() if instruction in lapsed and at > lapsed[instruction]
    ]
    paths["answers"] = _path(
        len(ledger.answers), len(unstored) - len(late), 0, refused_after_the_hold_lapsed=len(late)
    )

    # Blocklist: every approved number is on the compacted topic as it is in the database (the last record
    # of its key wins): listed, or taken off by the expiry job.
    unpublished, status = await _blocklist(kafka, sessions, ledger.blocklisted)
    paths["blocklist"] = _path(
        len(ledger.blocklisted),
        len(unpublished),
        0,
        expired=sum(1 for n in ledger.blocklisted if status.get(n) == "expired"),
    )
    paths.update(await _scheduled(sessions))
    return {
        "paths": paths,
        "audit": {"ok": verdict.ok, "checked": verdict.checked, "first_bad_id": verdict.first_bad_id},
    }


async def _blocklist(
    kafka: KafkaConnection, sessions: async_sessionmaker[AsyncSession], numbers: set[str], *, looks: int = 20
) -> tuple[set[str], dict[str, str]]:
    """The numbers whose last change the feed has published but the topic does not end with (lost), and
    each number's status. Listings keep expiring while this looks, so it reads the feed's cursor first,
    then the topic (which holds every change up to the cursor, at least), then the database (whose
    version of a number is as new as the topic's, or newer): a number whose version is past the cursor
    was changed meanwhile and is looked at again."""
    for _ in range(looks):
        async with sessions() as s:
            cursor = int((await s.execute(text("select published_version from blocklist_feed"))).scalar_one())
        last: dict[str, tuple[str, int]] = {}
        for record in await read_all(kafka, topics.name(topics.BLOCKLIST, PREFIX)):
            change = orjson.loads(record.value or b"{}")
            last[str(change.get("number"))] = (str(change.get("status")), int(change.get("version") or 0))
        async with sessions() as s:
            rows = await s.execute(
                text("select number, status, version from blocklist_entries where number = any(:n)"),
                {"n": list(numbers)},
            )
            now = {str(r[0]): (str(r[1]), int(r[2] or 0)) for r in rows}
        if all(version <= cursor for _, version in now.values()):
            break
        await asyncio.sleep(1)
    lost = {n for n in numbers if n not in now or last.get(n) != now[n]}
    return lost, {n: state for n, (state, _) in now.items()}


async def _group_offsets(
    admin: AIOKafkaAdminClient, groups: list[str]
) -> dict[str, dict[TopicPartition, int]]:
    """Each group's committed offsets."""
    return {
        group: {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
        for group in groups
    }


async def _trails(
    kafka: KafkaConnection, victims: list[str], by_person: dict[bytes, list[list[Any]]]
) -> dict[str, Any]:
    """Where a missed scam's trail ends: the victim's events (type, id, partition, offset, timestamp), the
    movements stage one made of them (direction, rescore, partition, offset), the dead letters naming
    them, and the scorer groups' committed offsets."""
    refs = {v: {e[1] for e in by_person.get(keys.person_key(v), [])} for v in victims}
    moves: dict[str, list[list[Any]]] = {v: [] for v in victims}
    for record in await read_all(kafka, topics.name(topics.TRANSFERS_BY_ACCOUNT, PREFIX)):
        move = orjson.loads(record.value or b"{}")
        phone = move.get("payer_phone") or move.get("holder_phone")
        if phone in moves:
            moves[phone].append(
                [move.get("direction"), move.get("rescore", False), record.partition, record.offset]
            )
    dead: dict[str, list[str]] = {v: [] for v in victims}
    for record in await read_all(kafka, topics.name(topics.DEAD_LETTER, PREFIX)):
        raw = (record.value or b"").decode(errors="replace")
        for v, ids in refs.items():
            dead[v] += [raw[:300] for i in ids if i and i in raw]
    committed = await _committed(kafka, (groups.SCORER_EVENTS, groups.SCORER_ACCOUNTS))
    return {
        v: {
            "events": by_person.get(keys.person_key(v), []),
            "movements": moves[v],
            "dead_letters": dead[v],
        }
        for v in victims
    } | {"committed": committed}


async def _committed(kafka: KafkaConnection, groups: tuple[str, ...]) -> dict[str, dict[int, int]]:
    """Each group's committed offset per partition (to tell a consumer that skipped from one that never
    read)."""
    async with admin_client(kafka) as admin:
        found = await _group_offsets(admin, [f"{PREFIX}{g}" for g in groups])
    return {
        g.removeprefix(PREFIX): {tp.partition: o for tp, o in offsets.items()} for g, offsets in found.items()
    }


async def _lapsed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, datetime]:
    """Instruction id → when its hold ended, for the holds that lapsed (an answer given before that is
    kept even when read after the expiry job ran)."""
    async with sessions() as s:
        rows = await s.execute(text("select id, expires_at from instructions where status = 'expired'"))
        return {str(r[0]): r[1] for r in rows}


async def _scheduled(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The scheduled jobs other than escalations (checked on their topic), each run by both instances of
    its service: every due item handled (none left due after the settling), and handled once."""
    found: dict[str, Any] = {}
    # Holds and listings keep falling due after the system settled: one due since the last few scheduler
    # rounds is not lost yet.
    pending = await _pending(sessions, grace_s=SCHEDULER_GRACE_S)
    async with sessions() as s:
        for path, action, due in (
            ("hold_expiries", "instruction.expired", "holds_due"),
            ("blocklist_expiries", "blocklist.expired", "blocklist_due"),
        ):
            rows = await s.execute(
                text("select entity_id, count(*) from audit_log where action = :a group by 1"), {"a": action}
            )
            runs = Counter({str(r[0]): int(r[1]) for r in rows})
            doubled = sum(n - 1 for n in runs.values())
            found[path] = _path(len(runs) + pending[due], pending[due], doubled, doubled)
        rows = await s.execute(text("select warning_id, count(*) from desk_tasks group by 1"))
        tasks = Counter({str(r[0]): int(r[1]) for r in rows})
    doubled = sum(n - 1 for n in tasks.values())
    found["desk_escalations"] = _path(len(tasks) + pending["desk_due"], pending["desk_due"], doubled, doubled)
    return found


async def _claims_of(
    sessions: async_sessionmaker[AsyncSession], events: list[tuple[str, str]], ledger: Ledger
) -> list[dict[str, Any]]:
    """What ingest's ledger says of these events, and when the harness was told they were accepted."""
    found = []
    async with sessions() as s:
        for institution, event_id in events:
            row = (
                await s.execute(
                    text(
                        "select received_at, pending_until from ingested_events "
                        "where institution_id = :i and event_id = :e"
                    ),
                    {"i": institution, "e": event_id},
                )
            ).first()
            acked_at, attempts = ledger.events[(institution, event_id)]
            found.append(
                {
                    "event": f"{institution}:{event_id}",
                    "acknowledged_at": acked_at.isoformat(),
                    "attempts": attempts,
                    "claim": None if row is None else [str(v) for v in row],
                }
            )
    return found
