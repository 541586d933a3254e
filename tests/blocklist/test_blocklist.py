"""The blocklist on the real PostgreSQL and Kafka: review, sync by version and ETag, the Kafka feed,
appeal, expiry, the audit chain, and the scorer's view of the list."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.blocklist import receivers
from services.kit.audit import service as audit
from services.kit.audit.models import AuditEntry
from services.kit.db import unit_of_work
from services.scorer.blocklist import Blocklist
from streams import acls, topics
from streams.schemas.blocklist import FraudReceiver, number_key
from tests import factories as f
from tests.blocklist.conftest import blocklist_client, listed_number, sync_numbers, wait_expired
from tests.kafka_tools import eventually, read_topic

pytestmark = pytest.mark.integration


async def _feed_has(infra, number: str, status: str) -> None:
    def seen(records) -> bool:
        return any(
            (v := orjson.loads(r.value))["number"] == number and v["status"] == status for r in records
        )

    await read_topic(infra.kafka, topics.name(topics.BLOCKLIST, infra.prefix), until=seen, timeout_s=10)


async def test_telecom_reports_are_reviewed_published_and_synced(blocklist, infra, sessions):
    _, tel_a = await f.institution(sessions, "telecom")
    _, tel_b = await f.institution(sessions, "telecom")
    _, bank = await f.institution(sessions, "bank")
    number = f.phone()
    for headers in (tel_a, tel_b):
        r = await blocklist.post(
            "/v1/blocklist/reports", json={"number": number, "note": "scam calls"}, headers=headers
        )
        assert r.status_code == 202, r.text
    listed = (await blocklist.get("/v1/blocklist/entries", headers=f.officer())).json()["items"]
    entry = next(e for e in listed if e["number"] == number)
    assert entry["status"] == "proposed" and entry["reports"] == 2
    assert (
        await blocklist.post("/v1/blocklist/reports", json={"number": number, "note": "x"}, headers=bank)
    ).status_code == 403
    assert (await sync_numbers(blocklist, bank)).status_code == 403
    assert number not in {c["number"] for c in (await sync_numbers(blocklist, tel_a)).json()["changes"]}

    # An operator reviews it; the telecom's sync then carries it, under a new version and ETag.
    reviewed = await blocklist.post(
        f"/v1/blocklist/entries/{entry['id']}/review", json={"decision": "approve"}, headers=f.officer()
    )
    assert reviewed.status_code == 200 and reviewed.json()["status"] == "active"
    version = reviewed.json()["version"]
    full = await sync_numbers(blocklist, tel_a)
    assert full.headers["ETag"] == f'"{full.json()["version"]}"' and full.json()["version"] >= version
    assert number in {c["number"] for c in full.json()["changes"] if c["status"] == "active"}
    unchanged = await sync_numbers(blocklist, tel_a, since=full.json()["version"], etag=full.headers["ETag"])
    assert unchanged.status_code == 304
    # As a cache or a client library may send it (RFC 9110: If-None-Match compares weakly, lists, `*`).
    current, since = full.headers["ETag"], full.json()["version"]
    for held in (f"W/{current}", f'"0", {current}', "*"):
        assert (await sync_numbers(blocklist, tel_a, since=since, etag=held)).status_code == 304, held
    changed = await sync_numbers(blocklist, tel_a, since=version - 1, etag="*")  # a change not yet held
    assert changed.status_code == 200 and number in {c["number"] for c in changed.json()["changes"]}
    other = await sync_numbers(blocklist, tel_a, since=since, etag='W/"0"')
    assert other.status_code == 200 and other.headers["ETag"] == current
    await _feed_has(infra, number, "active")

    # Every step is in the audit chain, which still verifies.
    async with sessions() as s:
        actions = list(
            (await s.execute(select(AuditEntry.action).where(AuditEntry.entity_id == entry["id"]))).scalars()
        )
        verdict = await audit.verify(s)
    assert actions == ["blocklist.reported", "blocklist.reported", "blocklist.approved"]
    assert verdict.ok, verdict


async def test_a_category_is_one_line_of_printable_text(blocklist, sessions):
    """It is published to every telecom beside the number: a bidirectional override or a line break in it
    (an outside trial's report took `<b>\u202e`) could reorder or hide what their screens show."""
    _, telecom = await f.institution(sessions, "telecom")
    for category in ("<b>\u202e", "fraud\nvip", "\u200bfraud"):
        number = f.phone()
        r = await blocklist.post(
            "/v1/blocklist/reports",
            json={"number": number, "note": "scam calls", "category": category},
            headers=telecom,
        )
        assert r.status_code == 422, (category, r.text)
        assert [d["field"] for d in r.json()["error"]["details"]] == ["body.category"]
        entries = (await blocklist.get("/v1/blocklist/entries", headers=f.officer())).json()["items"]
        assert number not in {e["number"] for e in entries}
    fine = {"number": f.phone(), "note": "scam calls", "category": "冒充公检法 impersonation"}
    assert (await blocklist.post("/v1/blocklist/reports", json=fine, headers=telecom)).status_code == 202


async def test_a_report_is_answered_with_a_receipt_not_the_police_entry(blocklist, sessions):
    """The reason, the officers and the status are police-internal; a telecom reporting a listed (or only
    proposed) number learns that its report was received, nothing more."""
    _, telecom = await f.institution(sessions, "telecom")
    listed, fresh = f.phone(), f.phone()
    await listed_number(blocklist, listed, reason="victim Zhang San lost 50000 in case 2026-123")
    answers = [
        await blocklist.post(
            "/v1/blocklist/reports", json={"number": number, "note": "scam calls"}, headers=telecom
        )
        for number in (listed, fresh)
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert [set(a.json()) for a in answers] == [{"id", "received_at"}] * 2
    assert answers[0].json()["id"] != answers[1].json()["id"]

    entries = (await blocklist.get("/v1/blocklist/entries", headers=f.officer())).json()["items"]
    by_number = {e["number"]: e for e in entries if e["number"] in (listed, fresh)}
    assert {n: (e["status"], e["reports"]) for n, e in by_number.items()} == {
        listed: ("active", 1),
        fresh: ("proposed", 1),
    }


async def test_a_cursor_the_server_never_issued_is_refused_not_answered_empty(blocklist, sessions):
    """A cursor above the current version (a database restored to an earlier state, a reader that took a
    version from elsewhere) would be answered "no changes" until the list caught up with it, and the
    changes below it never: the reader is told to sync again from 0."""
    _, telecom = await f.institution(sessions, "telecom")
    _, bank = await f.institution(sessions, "bank")
    current = (await sync_numbers(blocklist, telecom)).json()["version"]
    ahead = current + 1000
    refused = await sync_numbers(blocklist, telecom, since=ahead)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "since=0" in error["message"] and error["details"]["current_version"] == current
    await listed_number(blocklist, f.phone())
    assert (await sync_numbers(blocklist, telecom, since=ahead)).status_code == 409
    accounts = (await blocklist.get("/v1/blocklist/accounts", headers=bank)).json()["version"]
    refused = await blocklist.get("/v1/blocklist/accounts", params={"since": accounts + 1000}, headers=bank)
    assert refused.status_code == 409, refused.text
    at_current = await sync_numbers(
        blocklist, telecom, since=(await sync_numbers(blocklist, telecom)).json()["version"]
    )
    assert at_current.status_code == 200 and at_current.json()["changes"] == []


async def test_since_0_is_a_snapshot_that_replaces_the_readers_list(infra, sessions):
    """From 0 the sync gives what is listed now, not every change: a number that expired meanwhile is not
    in it, so a reader merging it into the list it held would block that number for ever. The API says
    the page replaces the list."""
    _, telecom = await f.institution(sessions, "telecom")
    async with blocklist_client(infra)(entry_ttl_s=1.0) as short:
        number = f.phone()
        entry = await listed_number(short, number)

        async def expired() -> bool:
            page = (await sync_numbers(short, telecom, since=entry["version"])).json()["changes"]
            return (number, "expired") in {(c["number"], c["status"]) for c in page}

        await eventually(expired, timeout_s=10)
        assert number not in {c["number"] for c in (await sync_numbers(short, telecom)).json()["changes"]}
        spec = (await short.get("/openapi.json")).json()["paths"]
    for path in ("/v1/blocklist", "/v1/blocklist/accounts"):
        (since,) = [p for p in spec[path]["get"]["parameters"] if p["name"] == "since"]
        assert "snapshot" in since["description"] and "replace" in since["description"], since


async def test_a_report_retried_under_its_request_id_counts_once(blocklist, sessions):
    """A telecom that timed out sends its report again: under the same `request_id` it is answered with
    the first receipt and counts once; the key is the telecom's own (another's same key is its own
    report), and a corrected report under a used key is refused, not taken for a retry."""
    _, tel_a = await f.institution(sessions, "telecom")
    _, tel_b = await f.institution(sessions, "telecom")
    number, key = f.phone(), str(uuid.uuid4())
    body = {"number": number, "note": "same report", "request_id": key}
    answers = [await blocklist.post("/v1/blocklist/reports", json=body, headers=tel_a) for _ in range(3)]
    assert [a.status_code for a in answers] == [202] * 3
    assert len({a.json()["id"] for a in answers}) == 1
    other = await blocklist.post("/v1/blocklist/reports", json=body, headers=tel_b)
    assert other.status_code == 202 and other.json()["id"] != answers[0].json()["id"]
    corrected = await blocklist.post(
        "/v1/blocklist/reports", json=body | {"note": "another report"}, headers=tel_a
    )
    assert corrected.status_code == 409, corrected.text
    assert corrected.json()["error"]["details"] == {"field": "body.request_id", "differs": ["note"]}

    listed = (await blocklist.get("/v1/blocklist/entries", headers=f.officer())).json()["items"]
    entry = next(e for e in listed if e["number"] == number)
    assert entry["reports"] == 2
    async with sessions() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.entity_id == entry["id"])
        assert list((await s.execute(stmt)).scalars()) == ["blocklist.reported"] * 2


async def test_officers_page_through_every_entry_by_cursor(blocklist, sessions):
    """The officers' list comes by pages, newest first, each naming the cursor of the next: every entry is
    reached once, also among entries proposed at the same instant (one case's accounts), and a cursor no
    page made is refused at the edge."""
    bank = (await f.institution(sessions, "bank"))[0]
    at, case_id = datetime.now(UTC), uuid.uuid4()
    accounts = [f.account("PAGE") for _ in range(5)]
    async with unit_of_work(sessions) as s:
        for account in accounts:
            message = FraudReceiver(
                message_id=f.unique("msg"),
                source="case",
                institution=bank,
                account=account,
                case_id=case_id,
                case_number="CJ-PAGES-1",
                decided_by=f.unique("closer"),
                role="operator",
                unit="changji-psb",
                decided_at=at,
            )
            await receivers.take(s, message)
    seen: list[dict] = []
    cursor = None
    while {e["account"] for e in seen} < set(accounts):
        params = {"status": "proposed", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await blocklist.get("/v1/blocklist/entries", params=params, headers=f.officer())).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        assert cursor is not None, "the last page came before every entry was seen"
    assert len({e["id"] for e in seen}) == len(seen)  # none twice
    mine = [e for e in seen if e["account"] in accounts]
    assert len(mine) == 5 and [e["id"] for e in mine] == sorted((e["id"] for e in mine), reverse=True)
    refused = await blocklist.get("/v1/blocklist/entries", params={"cursor": "x"}, headers=f.officer())
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "query.cursor"


async def test_a_second_proposal_of_a_live_entry_joins_it_on_the_record(blocklist, sessions):
    """A second officer proposing a number (or account) already proposed or listed is told it joined that
    entry (200, not 201), and their proposal and reason are in the audit chain, not dropped."""
    number, bank = f.phone(), (await f.institution(sessions, "bank"))[0]
    proposals = [
        ("/v1/blocklist/proposals", {"number": number, "category": "impersonation"}, "operator"),
        ("/v1/blocklist/accounts", {"institution": bank, "account": f.unique("acct")}, "supervisor"),
    ]
    for path, subject, role in proposals:
        first, second = f.unique("off-a"), f.unique("off-b")
        answers = [
            await blocklist.post(path, json=subject | {"reason": reason}, headers=f.officer(role, sub=who))
            for who, reason in ((first, "first"), (second, "second, other case"))
        ]
        assert [a.status_code for a in answers] == [201, 200], answers[1].text
        entry = answers[0].json()
        assert answers[1].json()["id"] == entry["id"] and answers[1].json()["proposed_by"] == first
        async with sessions() as s:
            stmt = select(AuditEntry).where(AuditEntry.entity_id == entry["id"]).order_by(AuditEntry.id)
            trail = [(e.action, e.actor, e.legal_basis) for e in (await s.execute(stmt)).scalars()]
            verdict = await audit.verify(s)
        assert [(a, who) for a, who, _ in trail] == [
            ("blocklist.proposed", first),
            ("blocklist.proposal_joined", second),
        ]
        assert "second, other case" in trail[1][2]
        assert verdict.ok, verdict


async def test_no_proposer_of_an_entry_reviews_it_nor_decides_its_appeal(blocklist, sessions):
    """Four eyes: an officer whose proposal joined an entry proposed it as much as its first proposer, so
    neither approves it as the second person, nor decides an appeal against its listing."""
    bank = (await f.institution(sessions, "bank"))[0]
    proposals = [
        ("/v1/blocklist/proposals", {"number": f.phone(), "category": "impersonation"}),
        ("/v1/blocklist/accounts", {"institution": bank, "account": f.unique("acct")}),
    ]
    for path, subject in proposals:
        first, joiner = (f.officer("supervisor", sub=f.unique(who)) for who in ("first", "joiner"))
        answers = [
            await blocklist.post(path, json=subject | {"reason": "r"}, headers=h) for h in (first, joiner)
        ]
        assert [a.status_code for a in answers] == [201, 200], answers[1].text
        review = f"/v1/blocklist/entries/{answers[0].json()['id']}/review"
        for proposer in (joiner, first):
            own = await blocklist.post(review, json={"decision": "approve"}, headers=proposer)
            assert own.status_code == 403, own.text
            assert "proposer of the entry" in own.json()["error"]["message"]
        approved = await blocklist.post(review, json={"decision": "approve"}, headers=f.officer())
        assert approved.status_code == 200 and approved.json()["status"] == "active", approved.text

        appeal = await blocklist.post(
            f"/v1/blocklist/entries/{approved.json()['id']}/appeals",
            json={"statement": "not mine"},
            headers=f.officer(),
        )
        decision = f"/v1/blocklist/appeals/{appeal.json()['id']}/decision"
        for proposer in (joiner, first):
            own = await blocklist.post(decision, json={"uphold": False, "note": "n"}, headers=proposer)
            assert own.status_code == 403, own.text
        decided = await blocklist.post(
            decision, json={"uphold": False, "note": "n"}, headers=f.officer("supervisor")
        )
        assert decided.status_code == 200 and decided.json()["status"] == "dismissed", decided.text


async def test_review_needs_a_second_person_and_happens_once(blocklist):
    number = f.phone()
    me = f.officer("operator", sub="op-one")
    entry = (
        await blocklist.post(
            "/v1/blocklist/proposals", json={"number": number, "category": "c", "reason": "r"}, headers=me
        )
    ).json()
    own = await blocklist.post(
        f"/v1/blocklist/entries/{entry['id']}/review", json={"decision": "approve"}, headers=me
    )
    assert own.status_code == 403
    other = f.officer("operator", sub="op-two")
    rejected = await blocklist.post(
        f"/v1/blocklist/entries/{entry['id']}/review", json={"decision": "reject"}, headers=other
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["version"] is None  # never published
    again = await blocklist.post(
        f"/v1/blocklist/entries/{entry['id']}/review", json={"decision": "approve"}, headers=other
    )
    assert again.status_code == 409
    auditor = await blocklist.post(
        "/v1/blocklist/proposals",
        json={"number": f.phone(), "category": "c", "reason": "r"},
        headers=f.officer("auditor"),
    )
    assert auditor.status_code == 403


async def test_appeal_upheld_removes_the_number_everywhere(blocklist, infra, sessions):
    _, telecom = await f.institution(sessions, "telecom")
    scorer_view = Blocklist()
    runner = scorer_view.runner(infra.common)
    task = asyncio.create_task(runner.run())
    try:
        number = f.phone()
        entry = await listed_number(blocklist, number)
        await eventually(lambda: scorer_view.blocks(number), timeout_s=15)
        before = (await sync_numbers(blocklist, telecom)).json()["version"]

        appeal = await blocklist.post(
            f"/v1/blocklist/entries/{entry['id']}/appeals",
            json={"statement": "this is my shop's number; it was spoofed"},
            headers=f.officer("operator", sub="desk-1"),
        )
        assert appeal.status_code == 201, appeal.text
        by_operator = await blocklist.post(
            f"/v1/blocklist/appeals/{appeal.json()['id']}/decision",
            json={"uphold": True, "note": "spoofed caller id confirmed"},
            headers=f.officer("operator"),
        )
        assert by_operator.status_code == 403
        decided = await blocklist.post(
            f"/v1/blocklist/appeals/{appeal.json()['id']}/decision",
            json={"uphold": True, "note": "spoofed caller id confirmed"},
            headers=f.officer("supervisor", sub="chief"),
        )
        assert decided.status_code == 200 and decided.json()["status"] == "upheld"

        changes = (await sync_numbers(blocklist, telecom, since=before)).json()["changes"]
        assert {(c["number"], c["status"]) for c in changes} >= {(number, "removed")}
        full = (await sync_numbers(blocklist, telecom)).json()["changes"]
        assert number not in {c["number"] for c in full}
        await _feed_has(infra, number, "removed")
        await eventually(lambda: not scorer_view.blocks(number), timeout_s=15)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)


async def test_listed_numbers_expire(infra, sessions):
    _, telecom = await f.institution(sessions, "telecom")
    async with blocklist_client(infra)(entry_ttl_s=1.0) as short:
        number = f.phone()
        entry = await listed_number(short, number)
        assert number in {c["number"] for c in (await sync_numbers(short, telecom)).json()["changes"]}
        await wait_expired(short, entry["id"])
        changes = (await sync_numbers(short, telecom, since=entry["version"])).json()["changes"]
        assert (number, "expired") in {(c["number"], c["status"]) for c in changes}
        assert number not in {c["number"] for c in (await sync_numbers(short, telecom)).json()["changes"]}
        await _feed_has(infra, number, "expired")


async def test_an_appeal_upheld_after_the_listing_expired_removes_nothing_and_says_so(infra, sessions):
    """The number's listing ended while its appeal waited: upholding it is recorded as upheld, not as a
    removal, and the entry stays as it ended (no new version in the feed)."""
    async with blocklist_client(infra)(entry_ttl_s=2.0) as short:
        entry = await listed_number(short, f.phone())
        appeal = await short.post(
            f"/v1/blocklist/entries/{entry['id']}/appeals",
            json={"statement": "my shop's number, spoofed"},
            headers=f.officer("operator"),
        )
        assert appeal.status_code == 201, appeal.text

        async def expired() -> dict | None:
            rows = (
                await short.get("/v1/blocklist/entries", params={"status": "expired"}, headers=f.officer())
            ).json()["items"]
            return next((r for r in rows if r["id"] == entry["id"]), None)

        ended = await eventually(expired, timeout_s=10)
        chief = f.unique("chief")
        decided = await short.post(
            f"/v1/blocklist/appeals/{appeal.json()['id']}/decision",
            json={"uphold": True, "note": "spoofed caller id confirmed"},
            headers=f.officer("supervisor", sub=chief),
        )
        assert decided.status_code == 200 and decided.json()["status"] == "upheld"
        assert await expired() == ended  # still expired, same version
        async with sessions() as s:
            stmt = select(AuditEntry).where(AuditEntry.entity_id == entry["id"]).order_by(AuditEntry.id)
            actions = [(e.action, e.actor) for e in (await s.execute(stmt)).scalars()]
        assert actions[-1] == ("blocklist.appeal_upheld", chief)
        assert "blocklist.removed" not in [a for a, _ in actions]


def _fences() -> float:
    return REGISTRY.get_sample_value("stopline_blocklist_feed_fences_total") or 0.0


async def test_a_feed_nobody_else_publishes_beside_keeps_its_producer(blocklist, infra):
    """Starting the producer again costs a connection to Kafka (a timeout per node down): a feed does it
    only after a transaction of its own failed, not for each publication."""

    async def published() -> None:
        number = f.phone()
        await listed_number(blocklist, number)
        await _feed_has(infra, number, "active")

    await published()  # fenced meanwhile by an earlier test's feed, it starts its producer again here
    before = _fences()
    await published()
    await published()
    assert _fences() == before


async def test_two_instances_publishing_in_turn_fail_no_run(blocklist, infra, caplog):
    """Each instance's feed publishes the changes made through it (woken by its own routes): in turn, each
    finds its producer fenced by the other's start. That is a takeover, not a failure: the feed starts
    its producer again at once and publishes, no run fails and waits for the next tick. (The other
    instance publishes only when woken, so the session's feed, fenced by its start, publishes its own.)"""
    async with blocklist_client(infra)(publish_poll_s=3600.0) as other:
        fences = _fences()
        with caplog.at_level(logging.WARNING, logger="services.kit.periodic"):
            for instance in (other, blocklist, other, blocklist):
                number = f.phone()
                await listed_number(instance, number)
                await _feed_has(infra, number, "active")
        failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("blocklist feed")]
        assert failed == []
        assert _fences() > fences  # they did take over from each other


async def test_a_publication_given_up_on_never_lands_after_a_newer_one(blocklist, infra):
    """A feed may still hold a publication it gave up on (Kafka slow to answer; or its cursor's lock lost to
    a PostgreSQL restart while the other instance took over), and the topics are compacted: an older change
    landing after a newer one would stay the number's last record. A stale publisher with the feed's
    transactional id, started after the feed's producer, has written the number's old state in a
    transaction still open: the feed's next transaction fails (fenced), it starts its producer again,
    which aborts the stale one's, and publishes; the stale one can no longer commit."""
    topic = topics.name(topics.BLOCKLIST, infra.prefix)
    number = f.phone()
    fences = _fences()
    stale = AIOKafkaProducer(**infra.kafka.options(), transactional_id=acls.feed_transactions(infra.prefix))
    await stale.start()
    try:
        await stale.begin_transaction()
        old = {"number": number, "status": "removed", "version": 1, "schema_version": 1}
        await stale.send_and_wait(topic, orjson.dumps(old), key=number_key(number))
        entry = await listed_number(blocklist, number)
        await _feed_has(infra, number, "active")
        with pytest.raises(KafkaError):
            await stale.commit_transaction()
    finally:
        with contextlib.suppress(KafkaError):
            await stale.stop()
    assert _fences() > fences
    records = await read_topic(infra.kafka, topic)
    published = [orjson.loads(r.value) for r in records if r.key == number_key(number)]
    assert [(p["status"], p["version"]) for p in published] == [("active", entry["version"])]
