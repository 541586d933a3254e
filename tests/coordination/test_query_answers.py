"""A bank's answers to instant queries: each transfer out of a queried account is recorded in the case's
money-flow tree once (a bank's transfer ids are its account's, not unique across its accounts), and an
answer that lists one transfer id twice is refused, on the API and on Kafka alike."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from services.coordination.instructions import answers
from services.coordination.instructions.service import Context
from services.coordination.money import repository as money
from services.kit.db import unit_of_work
from streams import topics
from streams.producer import Record
from streams.schemas.instructions import MAX_TRANSFERS, QueryResult, Response
from tests import factories as f
from tests.coordination.conftest import bank, issue, open_case, respond
from tests.kafka_tools import eventually, on_kafka, produce, read_topic
from tests.locks import backend, blocked_by

pytestmark = pytest.mark.integration


def _transfer(transfer_id: str, to: tuple[str, str], amount: str, minutes_ago: float = 10) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "to_institution": to[0],
        "to_account": to[1],
        "amount": amount,
        "at": f.iso(f.minutes_ago(minutes_ago)),
    }


def _result(*transfers: dict[str, Any]) -> dict[str, Any]:
    return {"holder": {"name": "Zhang San"}, "balance": "100.00", "transfers": list(transfers)}


async def _gone(c: Any, op: dict[str, str], case_id: str) -> dict[str, Decimal]:
    flow = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    return {n["account"]: Decimal(n["gone"]) for n in flow["nodes"]}


async def _proposed(c: Any, op: dict[str, str], case_id: str) -> list[tuple[str, str]]:
    proposals = (await c.get(f"/v1/cases/{case_id}/proposals", headers=op)).json()
    return sorted((p["account"], p["amount"]) for p in proposals)


@dataclass
class Queried:
    """A case, and a query issued in it to `inst` on `mule`, whose money went on to `other`'s `hop`."""

    c: Any
    op: dict[str, str]
    inst: str
    key: dict[str, str]
    other: str
    other_key: dict[str, str]
    mule: str
    hop: str
    case_id: str
    query: dict[str, Any]


async def _queried(
    coord: Any, sessions: Any, paid: str = "20000.00", lost: str = "50000.00", unit: str | None = None
) -> Queried:
    """`paid` into the mule, of the case's loss `lost` (by an officer of `unit`, if given)."""
    c, op = coord.client, f.officer(unit=unit) if unit else f.officer()
    inst, key, _ = await bank(sessions)
    other, other_key, _ = await bank(sessions)
    mule, hop = f.account("MULE"), f.account("HOP")
    case_id = await open_case(c, op, (inst, mule, paid), amount_lost=lost)
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=mule)
    return Queried(c, op, inst, key, other, other_key, mule, hop, case_id, query)


async def _unanswered(q: Queried) -> bool:
    status = (await q.c.get(f"/v1/instructions/{q.query['id']}", headers=q.op)).json()["status"]
    return status in ("issued", "delivered")


async def test_two_accounts_transfers_of_the_same_id_are_two_transfers(coord, sessions):
    c, op = coord.client, f.officer()
    inst, key, _ = await bank(sessions)
    other, _, _ = await bank(sessions)
    first, second = f.account("MULE"), f.account("MULE")
    hop1, hop2 = f.account("HOP"), f.account("HOP")
    case_id = await open_case(c, op, (inst, first, "20000.00"), (inst, second, "20000.00"))
    q1 = await issue(c, op, case_id, kind="query", institution_id=inst, account=first)
    q2 = await issue(c, op, case_id, kind="query", institution_id=inst, account=second)

    answered = await respond(
        c, key, q1["id"], "executed", query_result=_result(_transfer("0001", (other, hop1), "7000.00"))
    )
    assert answered.status_code == 200, answered.text
    repeat: dict[str, Any] = {"response_id": str(uuid.uuid4()), "outcome": "executed"}
    repeat["query_result"] = _result(_transfer("0001", (other, hop2), "9000.00"))
    url = f"/v1/institution/instructions/{q2['id']}/responses"
    assert (await c.post(url, json=repeat, headers=key)).status_code == 200
    gone = await _gone(c, op, case_id)
    assert (gone[first], gone[second]) == (Decimal("7000.00"), Decimal("9000.00"))
    assert await _proposed(c, op, case_id) == sorted([(hop1, "7000.00"), (hop2, "9000.00")])

    # The same answer again (its response id) records nothing twice; nor does a later query of the same
    # account whose answer lists the same transfer again, beside a new one.
    assert (await c.post(url, json=repeat, headers=key)).status_code == 200
    q3 = await issue(c, op, case_id, kind="query", institution_id=inst, account=second)
    again = _result(_transfer("0001", (other, hop2), "9000.00"), _transfer("0002", (other, hop2), "1500.00"))
    assert (await respond(c, key, q3["id"], "executed", query_result=again)).status_code == 200
    gone = await _gone(c, op, case_id)
    assert (gone[first], gone[second]) == (Decimal("7000.00"), Decimal("10500.00"))
    assert await _proposed(c, op, case_id) == sorted(
        [(hop1, "7000.00"), (hop2, "9000.00"), (hop2, "1500.00")]
    )


async def test_two_banks_answering_at_once_with_each_others_account_both_apply(coord, sessions, infra):
    """Two banks answer their queries of one case at once, each listing a transfer to the account queried at
    the other, both accounts new to the tree: each answer makes its own account's node, then the other's.
    Bank B's answer has made its first node as bank A's starts and waits on it; both answers apply."""
    c, op = coord.client, f.officer()
    bank_a, key_a, _ = await bank(sessions)
    bank_b, _, _ = await bank(sessions)
    x, y = f.account("MULE"), f.account("MULE")
    case_id = await open_case(c, op, (bank_a, f.account("MULE"), "20000.00"))
    query_a = await issue(c, op, case_id, kind="query", institution_id=bank_a, account=x)
    query_b = await issue(c, op, case_id, kind="query", institution_id=bank_b, account=y)
    ctx = Context(coord.settings, infra.prefix, infra.common.event_max_ahead_s)
    answer_b = Response(
        response_id=uuid.uuid4(),
        instruction_id=uuid.UUID(query_b["id"]),
        institution_id=bank_b,
        outcome="executed",
        query_result=QueryResult.model_validate(_result(_transfer("0001", (bank_a, x), "6000.00"))),
        responded_at=datetime.now(UTC),
    )

    async with unit_of_work(sessions) as answering_b:
        pid = await backend(answering_b)
        # Bank B's answer as it starts on the tree: its queried account's node.
        await money.account(
            answering_b, case_id=uuid.UUID(case_id), institution_id=bank_b, account=y, depth=0, parent_id=None
        )
        answering_a = asyncio.create_task(
            respond(
                c,
                key_a,
                query_a["id"],
                "executed",
                query_result=_result(_transfer("0001", (bank_b, y), "7000.00")),
            )
        )
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)
        await answers.answer(answering_b, response=answer_b, channel="api", ctx=ctx)
    answered_a = await answering_a
    assert answered_a.status_code == 200, (
        answered_a.text
    )  # (a deadlock would be a 503, for the bank to retry)

    gone = await _gone(c, op, case_id)
    assert (gone[x], gone[y]) == (Decimal("7000.00"), Decimal("6000.00"))
    for query in (query_a, query_b):
        assert (await c.get(f"/v1/instructions/{query['id']}", headers=op)).json()["status"] == "executed"


async def test_an_answer_listing_a_transfer_id_twice_is_refused(coord, sessions):
    q = await _queried(coord, sessions)
    to = (q.other, q.hop)
    twice = _result(
        _transfer("tr1", to, "5000.00"), _transfer("tr2", to, "100.00"), _transfer("tr1", to, "6000.00")
    )
    refused = await respond(q.c, q.key, q.query["id"], "executed", query_result=twice)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["error"]["details"]
    assert problem["field"] == "body.query_result.transfers.2.transfer_id"
    assert "transfer 0" in problem["reason"]
    assert await _unanswered(q)
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("0.00")


def _wrong_transfers(q: Queried) -> list[tuple[dict[str, Any], str, str]]:
    """Transfers no answer may list: each, the field it is refused at and part of the reason."""
    since = datetime.fromisoformat(q.query["since"])
    ok = _transfer("tr1", (q.other, q.hop), "100.00")
    return [
        ({**ok, "at": f.iso(f.now() + timedelta(days=365))}, "at", "in the future"),
        ({**ok, "at": "1900-01-01T00:00:00Z"}, "at", "before the query's `since`"),
        ({**ok, "at": f.iso(since - timedelta(days=3))}, "at", "before the query's `since`"),
        ({**ok, "to_institution": q.inst, "to_account": q.mule}, "to_account", "the queried account itself"),
    ]


async def test_an_answer_listing_a_transfer_the_query_did_not_ask_for_is_refused(coord, sessions):
    """The answer lists the transfers out of the account since the query's `since`, until now: one dated
    outside, or to the account itself, would add money the account never sent to the case's flow."""
    q = await _queried(coord, sessions)
    for transfer, field, reason in _wrong_transfers(q):
        fine = _transfer("tr0", (q.other, q.hop), "5000.00")
        result = _result(fine, transfer)
        refused = await respond(q.c, q.key, q.query["id"], "executed", query_result=result)
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["error"]["details"]
        assert problem["field"] == f"body.query_result.transfers.1.{field}"
        assert reason in problem["reason"]
    assert await _unanswered(q)
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("0.00")


@pytest.mark.parametrize("name", ["", "  "])
async def test_an_answer_naming_no_holder_is_refused(coord, sessions, name):
    q = await _queried(coord, sessions)
    result = {**_result(_transfer("tr1", (q.other, q.hop), "5000.00")), "holder": {"name": name}}
    refused = await respond(q.c, q.key, q.query["id"], "executed", query_result=result)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["error"]["details"]
    assert problem["field"] == "body.query_result.holder.name"
    assert await _unanswered(q)
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("0.00")


async def test_on_kafka_an_answer_listing_a_transfer_id_twice_is_told_refused(infra, coord, sessions):
    q = await _queried(coord, sessions)
    body = {
        "response_id": str(uuid.uuid4()),
        "instruction_id": q.query["id"],
        "institution_id": q.inst,
        "outcome": "executed",
        "query_result": _result(
            _transfer("tr1", (q.other, q.hop), "5000.00"), _transfer("tr1", (q.other, q.hop), "6000.00")
        ),
        "responded_at": f.iso(f.now()),
    }
    record = Record(
        topic=topics.name(topics.responses_from(q.inst), infra.prefix),
        key=q.query["id"].encode(),
        value=orjson.dumps(body),
    )
    await produce(await on_kafka(infra, q.inst, "bank"), [record])  # as the bank itself

    def refusals(records: list[Any]) -> list[dict[str, Any]]:
        return [v for v in (orjson.loads(r.value) for r in records) if v["type"] == "answer_refused"]

    instructions = topics.name(topics.instructions_for(q.inst), infra.prefix)
    told = await read_topic(infra.kafka, instructions, until=lambda rs: len(refusals(rs)) == 1, timeout_s=20)
    [notice] = refusals(told)
    assert notice["response_id"] == body["response_id"]
    fields = [d["field"] for d in notice["error"]["details"]]
    assert fields == ["body.query_result.transfers.1.transfer_id"]
    # The notice is queued in the transaction that refused the answer: nothing of it was applied.
    assert await _unanswered(q)
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("0.00")


async def test_an_answer_of_many_transfers_costs_a_few_statements(coord, sessions):
    """Its cost does not grow with its size: every institution's answers on the same consumer wait for it
    (one of 5,500 transfers took 21 s, three round trips each)."""
    q = await _queried(coord, sessions, paid="820000.00", lost="820000.00")
    transfers = [
        _transfer(f"t{n}", (q.other, f"{q.hop}-{n % 400}"), "2000.00" if n < 400 else "50.00")
        for n in range(800)
    ]
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "flow_" in statement:  # the tree's tables (the app's jobs run beside the answer)
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        answered = await respond(q.c, q.key, q.query["id"], "executed", query_result=_result(*transfers))
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert answered.status_code == 200, answered.text
    assert len(statements) <= 10, len(statements)  # four of them bound an account's proposals
    # All of it recorded: 400 next accounts, each paid twice; the 400 transfers of 2,000 proposed.
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("820000.00")
    flow = (await q.c.get(f"/v1/cases/{q.case_id}/flow", headers=q.op)).json()
    hops = [n for n in flow["nodes"] if n["parent_id"] is not None]
    assert len(hops) == 400 and {n["depth"] for n in hops} == {1}
    assert {Decimal(n["received"]) for n in hops} == {Decimal("2050.00")}
    proposals = (await q.c.get(f"/v1/cases/{q.case_id}/proposals", headers=q.op)).json()
    assert len(proposals) == 400 and {p["amount"] for p in proposals} == {"2000.00"}


async def test_no_more_is_proposed_from_an_account_than_it_received_of_the_case(coord, sessions):
    """A collection account's listing shows other victims' money too: the stops proposed on what it passed
    on, oldest first, stay within what the flow shows it receiving (the victims' 20,000 here), however
    many answers list its transfers; an account queried on a lead, which the flow shows receiving nothing,
    is not bounded."""
    q = await _queried(coord, sessions)
    hops = [f"{q.hop}-{n}" for n in range(5)]
    # Listed newest first: the older 300,000 took the victims' 20,000 first.
    first = _result(
        _transfer("a", (q.other, hops[0]), "12000.00", minutes_ago=5),
        _transfer("b", (q.other, hops[1]), "300000.00", minutes_ago=10),
    )
    assert (await respond(q.c, q.key, q.query["id"], "executed", query_result=first)).status_code == 200
    assert await _proposed(q.c, q.op, q.case_id) == [(hops[1], "20000.00")]
    # A later query of the account: nothing is left of its bound; the new transfer is recorded only.
    again = await issue(q.c, q.op, q.case_id, kind="query", institution_id=q.inst, account=q.mule)
    later = _result(_transfer("c", (q.other, hops[2]), "5000.00", minutes_ago=2))
    assert (await respond(q.c, q.key, again["id"], "executed", query_result=later)).status_code == 200
    assert await _proposed(q.c, q.op, q.case_id) == [(hops[1], "20000.00")]
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("317000.00")
    # The next layer is held to what the flow shows it receiving (300,000), not to the case's share of
    # it: a bound, not a trace.
    deeper = await issue(q.c, q.op, q.case_id, kind="query", institution_id=q.other, account=hops[1])
    onward = _result(_transfer("d", (q.inst, hops[3]), "400000.00", minutes_ago=1))
    assert (await respond(q.c, q.other_key, deeper["id"], "executed", query_result=onward)).status_code == 200
    assert (hops[3], "300000.00") in await _proposed(q.c, q.op, q.case_id)
    # A lead: an account the case's flow does not reach.
    lead = f.account("LEAD")
    on_lead = await issue(q.c, q.op, q.case_id, kind="query", institution_id=q.inst, account=lead)
    led = _result(_transfer("e", (q.other, hops[4]), "70000.00"))
    assert (await respond(q.c, q.key, on_lead["id"], "executed", query_result=led)).status_code == 200
    assert (hops[4], "70000.00") in await _proposed(q.c, q.op, q.case_id)


async def test_what_a_hold_kept_in_the_account_did_not_go_on_after_it(coord, sessions):
    """A transfer out after a hold took effect in the account did not carry what the hold kept: make run's
    story held the whole 12,118.59 at the first account, was then proposed the same sum again at the next
    hop for a transfer after the hold, and showed -12,118.59 outstanding. A transfer before the hold may
    have carried it (a hold fills from whatever the account has left): bounded as before."""
    q = await _queried(coord, sessions, paid="20000.00", lost="20000.00", unit=f"held-{uuid.uuid4().hex[:8]}")
    stop = await issue(
        q.c, q.op, q.case_id, kind="stop_payment", institution_id=q.inst, account=q.mule, amount="20000.00"
    )
    assert (await respond(q.c, q.key, stop["id"], "executed", held_amount="15000.00")).status_code == 200
    before, after = f"{q.hop}-B", f"{q.hop}-A"
    listed = _result(
        _transfer("a", (q.other, before), "8000.00", minutes_ago=10),
        _transfer("b", (q.other, after), "30000.00", minutes_ago=0),
    )
    assert (await respond(q.c, q.key, q.query["id"], "executed", query_result=listed)).status_code == 200
    # 20,000 received: 8,000 of it may have left before the hold; after it, 12,000 less the 15,000 it kept.
    assert await _proposed(q.c, q.op, q.case_id) == [(before, "8000.00")]
    # A stop at the next hop keeping more than the case lost: the case recovers its loss, no more.
    hop_stop = await issue(
        q.c, q.op, q.case_id, kind="stop_payment", institution_id=q.other, account=after, amount="30000.00"
    )
    held = await respond(q.c, q.other_key, hop_stop["id"], "executed", held_amount="30000.00")
    assert held.status_code == 200
    totals = (await q.c.get(f"/v1/cases/{q.case_id}/flow", headers=q.op)).json()["totals"]
    assert (totals["stopped"], totals["recovered"], totals["outstanding"]) == ("45000.00", "20000.00", "0.00")
    dashboard = (await q.c.get("/v1/dashboard", headers=q.op)).json()["amounts"]  # the unit's one case
    assert (Decimal(str(dashboard["stopped"])), Decimal(str(dashboard["outstanding"]))) == (
        Decimal("45000"),
        Decimal("0"),
    )


async def test_an_answer_of_many_transfers_keeps_no_object_per_transfer(coord, sessions, infra):
    """The answered instruction stays locked to the commit: mapped objects for each transfer's account and
    proposal (seconds of Python for the most transfers, more on a loaded machine) held a relay marking it
    delivered past its statement timeout."""
    q = await _queried(coord, sessions, paid="1000000.00", lost="1000000.00")
    transfers = [_transfer(f"t{n}", (q.other, f"{q.hop}-{n}"), "2000.00") for n in range(500)]
    answer = Response(
        response_id=uuid.uuid4(),
        instruction_id=uuid.UUID(q.query["id"]),
        institution_id=q.inst,
        outcome="executed",
        query_result=QueryResult.model_validate(_result(*transfers)),
        responded_at=datetime.now(UTC),
    )
    ctx = Context(coord.settings, infra.prefix, infra.common.event_max_ahead_s)
    made: list[str] = []

    def seen(_: Any, instance: Any) -> None:
        made.append(type(instance).__name__)

    async with unit_of_work(sessions) as session:
        for change in ("loaded_as_persistent", "pending_to_persistent"):
            event.listen(session.sync_session, change, seen)
        await answers.answer(session, response=answer, channel="api", ctx=ctx)
    assert len(made) < 10, Counter(made)
    assert len(await _proposed(q.c, q.op, q.case_id)) == 500


def _longest_time() -> str:
    """Now, as long as a time is written: to the microsecond, with an offset."""
    return datetime.now(timezone(timedelta(hours=8))).isoformat(timespec="microseconds")


def _longest(n: int) -> dict[str, Any]:
    """A transfer with every field at its longest, each of them its own (`n`)."""
    return {
        "transfer_id": f"{n:T>64}",
        "to_institution": "b" * 40,
        "to_account": f"{n:A>34}",
        "amount": "999999999999.99",
        "at": _longest_time(),
    }


def _longest_answer(response: dict[str, Any], transfers: int) -> dict[str, Any]:
    """An executed query's answer with every field at its longest, listing `transfers` transfers."""
    result = {
        "holder": {"name": "n" * 200, "id_number_last4": "123X", "phone": "+" + "8" * 19},
        "balance": "9999999999999.99",
        "transfers": [_longest(n) for n in range(transfers)],
    }
    return response | {
        "response_id": str(uuid.uuid4()),
        "outcome": "executed",
        "reason": "r" * 1000,
        "query_result": result,
        "responded_at": _longest_time(),
    }


async def test_an_answer_of_the_most_transfers_fits_and_one_more_is_refused(coord, sessions):
    q = await _queried(coord, sessions)
    url = f"/v1/institution/instructions/{q.query['id']}/responses"
    headers = q.key | {"Content-Type": "application/json"}
    # Encoded with the spaces of Python's default encoder, as a bank's client may.
    over = json.dumps(_longest_answer({}, MAX_TRANSFERS + 1)).encode()
    refused = await q.c.post(url, content=over, headers=headers)
    assert refused.status_code == 422, refused.text[:300]
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["body.query_result.transfers"]
    assert await _unanswered(q)

    most = json.dumps(_longest_answer({}, MAX_TRANSFERS)).encode()
    answered = await q.c.post(url, content=most, headers=headers)
    assert answered.status_code == 200, answered.text[:300]
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("999999999999.99") * MAX_TRANSFERS


async def test_the_most_transfers_find_their_nodes_under_the_plan_postgresql_caches(coord, sessions):
    """After a few uses PostgreSQL plans a prepared statement once for any parameters. Under that generic
    plan the tree's nodes of an answer of the most transfers are still made and found well within the
    statement timeout (a join of the table with the given rows became a nested loop of 10^8 comparisons,
    17 s: the answer was refused on every try); a node found keeps its first depth."""
    q = await _queried(coord, sessions)
    accounts = [("b" * 40, f"{n:A>34}") for n in range(MAX_TRANSFERS)]
    # Closed without a commit: the `n_distinct` and the statistics are rolled back (ANALYZE's counts of
    # the table's pages and rows stay, being the table's own).
    async with sessions() as session:
        # Statistics as a site's many small cases give them (a node or two per case).
        await session.execute(text("alter table flow_accounts alter column case_id set (n_distinct = -1)"))
        await session.execute(text("analyze flow_accounts"))
        await session.execute(text("set local plan_cache_mode = force_generic_plan"))
        await session.execute(text("set local statement_timeout = '5s'"))
        case_id = uuid.UUID(q.case_id)
        made = await money.nodes(session, case_id=case_id, accounts=accounts, depth=1, parent_id=None)
        found = await money.nodes(session, case_id=case_id, accounts=accounts[::-1], depth=2, parent_id=None)
    assert len(made) == MAX_TRANSFERS and found == made
    assert {n.depth for n in found.values()} == {1}


async def test_on_kafka_an_answer_of_the_most_transfers_fits_a_record(infra, coord, sessions):
    q = await _queried(coord, sessions)
    value = orjson.dumps(
        _longest_answer({"instruction_id": q.query["id"], "institution_id": q.inst}, MAX_TRANSFERS)
    )
    assert len(value) > 2**20  # over the topic's 1 MiB as it is: the bank compresses, as the docs say
    bank_kafka = await on_kafka(infra, q.inst, "bank")
    producer = AIOKafkaProducer(**bank_kafka.options(), compression_type="gzip", max_request_size=2**22)
    await producer.start()
    try:
        topic = topics.name(topics.responses_from(q.inst), infra.prefix)
        await producer.send_and_wait(topic, value, key=q.query["id"].encode())
    finally:
        await producer.stop()

    async def executed() -> bool:
        got = await q.c.get(f"/v1/instructions/{q.query['id']}", headers=q.op)
        return bool(got.json()["status"] == "executed")

    # Retried while it waits on a lock or a busy machine (an outage to the consumer): applied, however late.
    await eventually(executed, timeout_s=90)
    assert (await _gone(q.c, q.op, q.case_id))[q.mule] == Decimal("999999999999.99") * MAX_TRANSFERS
