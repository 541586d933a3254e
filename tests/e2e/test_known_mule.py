"""The known-mule hard rule end to end, on the real Kafka and PostgreSQL: coordination tells the blocklist
which accounts received victims' money (a case closed as confirmed fraud, an executed freeze), a second
officer lists them, the scorer reads the accounts feed, and a later transfer to such an account alerts
whatever the model says. A listing that ends (appeal upheld, expiry) stops doing so."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.coordination.alerts.models import AlertRow
from services.scorer.main import Scorer
from tests import factories as f
from tests.blocklist.conftest import blocklist_client
from tests.coordination.conftest import bank, issue, open_case, respond
from tests.e2e.test_pipeline import _alerts_for, _drained
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration

MULE_REASON = "the payee account is a known mule account"
# How long the freeze's listing lasts from its review: the test waits that long for it to expire. The
# scorer knows of it a tenth of a second after the review (its own wait is bounded by the listing).
_LISTED_S = 4.0


def _scorer_knows(scorer: Scorer, institution: str, account: str) -> bool:
    assert scorer.accounts is not None
    return scorer.accounts.knowledge.is_known_mule(institution, account)


async def _proposed(blocklist: httpx.AsyncClient, account: str) -> dict[str, Any]:
    """The blocklist's proposal for the account, once coordination's word has reached it."""

    async def found() -> dict[str, Any] | None:
        rows = (
            await blocklist.get("/v1/blocklist/entries", params={"status": "proposed"}, headers=f.officer())
        ).json()["items"]
        return next((r for r in rows if r["account"] == account), None)

    return await eventually(found, timeout_s=20)


async def _review(blocklist: httpx.AsyncClient, entry: dict[str, Any]) -> dict[str, Any]:
    reviewed = await blocklist.post(
        f"/v1/blocklist/entries/{entry['id']}/review",
        json={"decision": "approve", "note": "the case file shows the account collecting victims' money"},
        headers=f.officer("operator", sub="reviewer"),
    )
    assert reviewed.status_code == 200, reviewed.text
    return reviewed.json()


async def _pays(ingest: httpx.AsyncClient, headers: dict[str, str], payee_bank: str, mule: str) -> str:
    """An ordinary-looking payment (no call, a small amount) to the account; returns the payer."""
    payer = f.phone()
    transfer = f.transfer(
        payer,
        payer_account=f.account(),
        payee_account=mule,
        amount="500.00",
        at=f.minutes_ago(1),
        payee_bank=payee_bank,
    )
    assert (await ingest.post("/v1/events", json={"events": [transfer]}, headers=headers)).json()[
        "accepted"
    ] == 1
    return payer


def _mule_alerts(payer: str):
    return lambda r: r.subject.get("phone") == payer and MULE_REASON in r.reasons


async def test_a_confirmed_case_payee_alerts_until_delisted(infra, ingest, scorer, coord, sessions):
    mule_bank, _, _ = await bank(sessions)
    _, payer_bank = await f.institution(sessions, "bank")
    mule = f.account("MULE")
    officer = f.officer("operator", sub="case-officer", unit="km-unit")
    case_id = await open_case(coord.client, officer, (mule_bank, mule, "48000.00"))
    closed = await coord.client.patch(
        f"/v1/cases/{case_id}", json={"status": "closed", "outcome": "confirmed_fraud"}, headers=officer
    )
    assert closed.status_code == 200, closed.text

    async with blocklist_client(infra)() as blocklist:
        entry = await _proposed(blocklist, mule)
        assert (entry["institution"], entry["source"], entry["case_id"]) == (mule_bank, "case", case_id)
        assert entry["proposed_by"] == "case-officer"
        assert not _scorer_knows(scorer, mule_bank, mule)  # proposed is not listed: a second officer decides
        listed = await _review(blocklist, entry)
        await eventually(lambda: _scorer_knows(scorer, mule_bank, mule), timeout_s=15)

        payer = await _pays(ingest, payer_bank, mule_bank, mule)
        alerts = await eventually(lambda: _alerts_for(sessions, _mule_alerts(payer)), timeout_s=15)
        alert: AlertRow = alerts[0]
        assert alert.reasons[0] == MULE_REASON  # a hard rule's reason comes first
        assert alert.subject["payee_account"] == mule and alert.subject["payee_institution"] == mule_bank
        assert scorer.accounts is not None and alert.score >= scorer.accounts.s.hard_rule_score

        # The holder's appeal is upheld: the account leaves the list, and the rule stops alerting.
        appeal = await blocklist.post(
            f"/v1/blocklist/entries/{listed['id']}/appeals",
            json={"statement": "the account was taken over; the holder reported it"},
            headers=f.officer("operator", sub="desk"),
        )
        decided = await blocklist.post(
            f"/v1/blocklist/appeals/{appeal.json()['id']}/decision",
            json={"uphold": True, "note": "takeover confirmed by the bank"},
            headers=f.officer("supervisor", sub="chief"),
        )
        assert decided.status_code == 200, decided.text
        await eventually(lambda: not _scorer_knows(scorer, mule_bank, mule), timeout_s=15)
        later = await _pays(ingest, payer_bank, mule_bank, mule)
        await _drained(infra)  # the payment went through both scorer stages and the alerts consumer
        assert await _alerts_for(sessions, _mule_alerts(later)) == []


async def test_an_executed_freeze_lists_the_account_until_the_listing_expires(
    infra, ingest, scorer, coord, sessions
):
    mule_bank, key, _ = await bank(sessions)
    _, payer_bank = await f.institution(sessions, "bank")
    mule = f.account("MULE")
    op = f.officer("operator", sub="fz-officer", unit="fz-unit")
    case_id = await open_case(coord.client, op, (mule_bank, mule, "9000.00"))
    freeze = await issue(
        coord.client,
        op,
        case_id,
        kind="freeze",
        institution_id=mule_bank,
        account=mule,
        amount="9000.00",
        document_number="DOC-FZ-1",
    )
    approved = await coord.client.post(
        f"/v1/instructions/{freeze['id']}/approve",
        headers=f.officer("supervisor", sub="fz-chief", unit="fz-unit"),
    )
    assert approved.status_code == 200, approved.text
    assert (
        await respond(coord.client, key, freeze["id"], "executed", held_amount="9000.00")
    ).status_code == 200

    async with blocklist_client(infra)(entry_ttl_s=_LISTED_S) as blocklist:
        entry = await _proposed(blocklist, mule)
        assert (entry["source"], entry["proposed_by"]) == ("freeze", "fz-chief")
        await _review(blocklist, entry)
        await eventually(lambda: _scorer_knows(scorer, mule_bank, mule), timeout_s=_LISTED_S)

        async def expired() -> bool:
            rows = (
                await blocklist.get(
                    "/v1/blocklist/entries", params={"status": "expired"}, headers=f.officer()
                )
            ).json()["items"]
            return entry["id"] in {r["id"] for r in rows}

        await eventually(expired, timeout_s=20)
        await eventually(lambda: not _scorer_knows(scorer, mule_bank, mule), timeout_s=15)
        later = await _pays(ingest, payer_bank, mule_bank, mule)
        await _drained(infra)
        assert await _alerts_for(sessions, _mule_alerts(later)) == []
