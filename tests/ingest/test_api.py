"""The ingest API on the real Kafka and PostgreSQL: accepted, de-duplicated, and every bad input refused
with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import func, select

from services.ingest.models import IngestedEvent
from streams import keys, topics
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import read_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration


async def _ledger_count(sessions, institution: str) -> int:
    async with sessions() as s:
        return int(
            (
                await s.execute(select(func.count()).where(IngestedEvent.institution_id == institution))
            ).scalar_one()
        )


async def _on_topic(infra: Infra, kind: str, event_ids: set[str]) -> list:
    topic = topics.name(topics.EVENT_TOPICS[kind], infra.prefix)
    records = await read_topic(infra.kafka, topic)
    # By the value's text: the run's topic also holds other tests' records, some deliberately not JSON.
    return [r for r in records if any(f'"event_id":"{i}"'.encode() in r.value for i in event_ids)]


async def test_batch_is_produced_keyed_by_person(infra, ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    person = f.phone()
    events = [
        f.transfer(
            person, payer_account=f.account(), payee_account=f.account(), amount="120.50", at=f.minutes_ago(1)
        )
        for _ in range(3)
    ]
    response = await ingest.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": []}
    records = await _on_topic(infra, "bank", {e["event_id"] for e in events})
    assert len(records) == 3
    assert {r.key for r in records} == {keys.person_key(person)}
    envelope = orjson.loads(records[0].value)
    assert envelope["institution"] == bank
    assert envelope["received_at"]
    assert envelope["event"]["amount"] == "120.50"


async def test_repeated_batch_is_not_produced_twice(infra, ingest, sessions):
    _, headers = await f.institution(sessions, "telecom")
    events = [f.call(f.phone(), start=f.minutes_ago(20), minutes=3) for _ in range(2)]
    first = await ingest.post("/v1/events", json={"events": events}, headers=headers)
    again = await ingest.post("/v1/events", json={"events": events}, headers=headers)
    assert first.json()["accepted"] == 2
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": [e["event_id"] for e in events]}
    assert len(await _on_topic(infra, "telecom", {e["event_id"] for e in events})) == 2


async def test_an_event_id_reused_for_other_content_refuses_the_batch(infra, ingest, sessions):
    """Not a repeat: the new content would be dropped unseen. 409 naming the event, nothing of the batch
    written; the same content written another way stays a duplicate."""
    telecom, headers = await f.institution(sessions, "telecom")
    person = f.phone()
    first = {**f.call(person, start=f.minutes_ago(30), minutes=1), "duration_s": 60}
    assert (await ingest.post("/v1/events", json={"events": [first]}, headers=headers)).status_code == 200
    fresh = f.call(person, start=f.minutes_ago(20), minutes=2)
    for changed in ({"duration_s": 3000}, {"duration_s": 9999, "caller_reported": True}):
        response = await ingest.post(
            "/v1/events", json={"events": [fresh, {**first, **changed}]}, headers=headers
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "conflict"
        assert response.json()["error"]["details"] == [
            {
                "index": 1,
                "event_id": first["event_id"],
                "field": "event_id",
                "reason": "this event_id was accepted before for other content; a corrected event takes a "
                "new event_id",
            }
        ]
    assert await _ledger_count(sessions, telecom) == 1  # not `fresh`
    # Key order, spacing, the time zone and a default written out make no other event.
    beijing = datetime.fromisoformat(first["occurred_at"]).astimezone(timezone(timedelta(hours=8)))
    same = {"schema_version": 1, **dict(reversed(list(first.items()))), "occurred_at": beijing.isoformat()}
    body = orjson.dumps({"events": [same]}, option=orjson.OPT_INDENT_2)
    again = await ingest.post("/v1/events", content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": 0, "duplicates": [first["event_id"]]}
    records = await _on_topic(infra, "telecom", {first["event_id"], fresh["event_id"]})
    assert [orjson.loads(r.value)["event"]["duration_s"] for r in records] == [60]


async def test_an_id_kept_without_a_digest_is_compared_by_id_only(infra, ingest, sessions):
    """Rows from before the ledger kept digests: a repeat of their id is a duplicate, as it was."""
    telecom, headers = await f.institution(sessions, "telecom")
    event = f.call(f.phone(), start=f.minutes_ago(10), minutes=1)
    async with sessions() as s, s.begin():
        s.add(IngestedEvent(institution_id=telecom, event_id=event["event_id"], received_at=f.now()))
    response = await ingest.post("/v1/events", json={"events": [{**event, "duration_s": 7}]}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0, "duplicates": [event["event_id"]]}


async def test_concurrent_identical_batches_are_accepted_once(infra, ingest, sessions):
    _, headers = await f.institution(sessions, "telecom")
    events = [f.call(f.phone(), start=f.minutes_ago(5), minutes=1) for _ in range(20)]
    responses = await asyncio.gather(
        *(ingest.post("/v1/events", json={"events": events}, headers=headers) for _ in range(4))
    )
    assert sum(r.json()["accepted"] for r in responses) == 20
    assert len(await _on_topic(infra, "telecom", {e["event_id"] for e in events})) == 20


async def test_malformed_event_rejects_whole_batch_naming_event_field_and_reason(infra, ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    good = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    bad = {**good, "event_id": f.unique("bad"), "amount": "-5"}
    response = await ingest.post("/v1/events", json={"events": [good, bad]}, headers=headers)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details == [
        {
            "index": 1,
            "event_id": bad["event_id"],
            "field": "amount",
            "reason": "Input should be greater than 0",
        }
    ]
    assert await _ledger_count(sessions, bank) == 0
    assert await _on_topic(infra, "bank", {good["event_id"], bad["event_id"]}) == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("occurred_at"), "occurred_at"),
        (lambda e: e.update(occurred_at="2026-01-01T10:00:00"), "occurred_at"),  # no time zone
        (lambda e: e.update(payer_phone="13800000000"), "payer_phone"),  # not E.164
        (lambda e: e.update(amount="1.234"), "amount"),
        (lambda e: e.update(surprise=1), "surprise"),
        (lambda e: e.update(type="bank.unknown"), "type"),
        (lambda e: e.pop("type"), "type"),
        (lambda e: e.update(type=None), "type"),
    ],
)
async def test_each_malformed_field_is_named(ingest, sessions, mutate, field):
    _, headers = await f.institution(sessions, "bank")
    event = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    mutate(event)
    response = await ingest.post("/v1/events", json={"events": [event]}, headers=headers)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_s", b"true"),
        ("duration_s", b'"1_000"'),
        ("duration_s", b'"  42 "'),
        ("duration_s", b"2.0"),
        ("duration_s", b"1e3"),
        ("schema_version", b"true"),
        ("schema_version", b"1.0"),
    ],
)
async def test_integer_fields_take_only_json_integers(ingest, sessions, field, value):
    """As the published schema says: no boolean, string, or number with a fraction or exponent is one."""
    telecom, headers = await f.institution(sessions, "telecom")
    assert (await ingest.get("/v1/schemas/telecom.call")).json()["properties"][field]["type"] == "integer"
    event = {**f.call(f.phone(), start=f.minutes_ago(5), minutes=1), field: "?"}
    placeholder = f'"{field}":"?"'.encode()
    body = orjson.dumps({"events": [event]}).replace(placeholder, f'"{field}":'.encode() + value)
    response = await ingest.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert await _ledger_count(sessions, telecom) == 0


async def test_body_that_is_not_a_batch_is_refused(ingest, sessions):
    _, headers = await f.institution(sessions, "bank")
    for body in (b"{not json", b'{"events": {}}', b'{"events": []}', b"[]"):
        response = await ingest.post("/v1/events", content=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_input"


async def test_a_batch_with_fields_beside_its_events_is_refused(ingest, sessions):
    """The published schema forbids them (`additionalProperties: false`); they were taken silently."""
    bank, headers = await f.institution(sessions, "bank")
    event = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    schema = (await ingest.get("/openapi.json")).json()["components"]["schemas"]["EventBatch"]
    assert schema["additionalProperties"] is False
    response = await ingest.post("/v1/events", json={"events": [event], "x": 1}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == [{"field": "x", "reason": "a batch has only `events`"}]
    assert await _ledger_count(sessions, bank) == 0


async def test_a_login_from_a_blank_device_is_refused(ingest, sessions):
    """A required text is never white space alone, in an event as in any request (docs/security.md)."""
    bank, headers = await f.institution(sessions, "bank")
    login = {
        "type": "bank.login",
        "event_id": f.unique("login"),
        "occurred_at": f.iso(f.now()),
        "account": f.account(),
        "holder_phone": f.phone(),
        "device_id": "   ",
    }
    response = await ingest.post("/v1/events", json={"events": [login]}, headers=headers)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == ["device_id"]
    assert await _ledger_count(sessions, bank) == 0


async def test_duplicate_event_id_inside_a_batch_is_refused(ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    event = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    response = await ingest.post("/v1/events", json={"events": [event, event]}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["index"] == 1
    assert await _ledger_count(sessions, bank) == 0


async def test_oversized_body_gets_413(ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    event = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    huge = {"events": [event], "padding": "x" * 3_000_000}
    # Refused before its sender is known.
    too_large = {"source": "unknown", "reason": "too_large"}
    before = await sample(ingest, "stopline_ingest_rejected_total", **too_large)
    response = await ingest.post("/v1/events", json=huge, headers=headers)
    assert response.status_code == 413
    assert await _ledger_count(sessions, bank) == 0
    assert await sample(ingest, "stopline_ingest_rejected_total", **too_large) == before + 1

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: found out while it is read
        body = orjson.dumps(huge)
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    response = await ingest.post("/v1/events", content=streamed(), headers=headers)
    assert response.status_code == 413
    assert await _ledger_count(sessions, bank) == 0
    assert await sample(ingest, "stopline_ingest_rejected_total", **too_large) == before + 2


async def test_too_many_events_in_one_batch_is_refused(ingest, sessions):
    _, headers = await f.institution(sessions, "telecom")
    events = [f.call(f.phone(), start=f.now(), minutes=1) for _ in range(1001)]
    response = await ingest.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "events"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer slk_nope.nope", "Bearer not-a-key", "Basic Zm9vOmJhcg=="],
)
async def test_missing_or_wrong_credentials_get_401(ingest, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    event = f.call(f.phone(), start=f.now(), minutes=1)
    response = await ingest.post("/v1/events", json={"events": [event]}, headers=headers)
    assert response.status_code == 401


async def test_wrong_secret_for_a_real_key_id_gets_401(ingest, sessions):
    _, headers = await f.institution(sessions, "telecom")
    key_id = headers["Authorization"].split(".")[0]
    response = await ingest.post(
        "/v1/events",
        json={"events": [f.call(f.phone(), start=f.now(), minutes=1)]},
        headers={"Authorization": f"{key_id}.forged"},
    )
    assert response.status_code == 401


async def test_wrong_kind_of_event_gets_403_and_nothing_is_written(infra, ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    call = f.call(f.phone(), start=f.now(), minutes=1)
    transfer = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="10", at=f.now()
    )
    response = await ingest.post("/v1/events", json={"events": [transfer, call]}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["details"][0]["index"] == 1
    assert await _ledger_count(sessions, bank) == 0
    assert await _on_topic(infra, "bank", {transfer["event_id"]}) == []


async def test_schemas_are_served(ingest):
    names = (await ingest.get("/v1/schemas")).json()["event_types"]
    assert "bank.transfer" in names and "telecom.call" in names
    schema = (await ingest.get("/v1/schemas/bank.transfer")).json()
    assert "amount" in schema["properties"]
    assert (await ingest.get("/v1/schemas/nope")).status_code == 404


async def test_metrics_count_what_was_accepted_and_refused(ingest, sessions):
    assert (await ingest.get("/health")).json()["status"] == "ok"
    assert await sample(ingest, "stopline_ready") == 1
    _, headers = await f.institution(sessions, "telecom")

    async def counts() -> tuple[float, ...]:
        return (
            await sample(ingest, "stopline_ingest_events_total", source="telecom"),
            await sample(ingest, "stopline_ingest_rejected_total", source="telecom", reason="duplicate"),
            await sample(ingest, "stopline_ingest_rejected_total", source="telecom", reason="invalid"),
            await sample(ingest, "stopline_ingest_rejected_total", source="telecom", reason="forbidden_kind"),
            await sample(
                ingest, "stopline_ingest_rejected_total", source="unknown", reason="unauthenticated"
            ),
        )

    before = await counts()
    calls = [f.call(f.phone(), start=f.minutes_ago(20), minutes=3) for _ in range(3)]
    assert (await ingest.post("/v1/events", json={"events": calls}, headers=headers)).status_code == 200
    assert (await ingest.post("/v1/events", json={"events": calls[:2]}, headers=headers)).status_code == 200
    broken = [{**calls[0], "event_id": f.unique("c"), "minutes": "long"}, {"type": "telecom.call"}]
    assert (await ingest.post("/v1/events", json={"events": broken}, headers=headers)).status_code == 422
    assert (await ingest.post("/v1/events", json={"events": []}, headers=headers)).status_code == 422  # one
    transfer = f.transfer(
        f.phone(), payer_account=f.account(), payee_account=f.account(), amount="1", at=f.now()
    )
    assert (await ingest.post("/v1/events", json={"events": [transfer]}, headers=headers)).status_code == 403
    assert (
        await ingest.post("/v1/events", json={"events": calls}, headers={"Authorization": "Bearer x"})
    ).status_code == 401
    after = await counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 2, 3, 1, 1]


async def test_a_payee_institution_that_is_no_stopline_institution_is_accepted_and_counted(
    infra, ingest, sessions
):
    """A payee bank outside Stopline is legitimate (200), but a member named by the bank's own code is a
    mistake that hides the payee account from its bank's reports: ingest counts such events by sender."""
    bank, headers = await f.institution(sessions, "bank")
    member, _ = await f.institution(sessions, "bank")
    outside = f"code-{f.unique('x')[-8:]}"
    metric = "stopline_ingest_unknown_payee_institution_total"

    def paid_to(payee_bank: str) -> dict:
        return f.transfer(
            f.phone(),
            payer_account=f.account(),
            payee_account=f.account(),
            amount="50.00",
            at=f.minutes_ago(1),
            payee_bank=payee_bank,
        )

    events = [paid_to(member), paid_to(outside), paid_to(outside), paid_to(bank)]
    response = await ingest.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 4, "duplicates": []}
    assert await sample(ingest, metric, institution=bank) == 2
    # A retry is a duplicate, not counted again; a later event to the outside bank is.
    again = await ingest.post("/v1/events", json={"events": [*events, paid_to(outside)]}, headers=headers)
    assert again.json()["accepted"] == 1
    assert await sample(ingest, metric, institution=bank) == 3
