"""The fault suite's traffic reports every answer it does not expect (ingest refusing a retried batch, an
approval refused): each is a finding, listed in the report and failing the run, and the loop that met it
goes on with its next item. Before, the loop's task died and no one read it: the run only had less
traffic."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any, cast

import httpx
import pytest

from deploy.chaos import traffic as traffic_module
from deploy.chaos.__main__ import _passed, summary
from deploy.chaos.traffic import BANK, CALL_SCAM, SCAMS, SIM_SCAM, TELECOM, UNIT, Ledger, Traffic
from services.kit.tokens import issue
from streams.connection import KafkaConnection
from tests.kafka_tools import eventually

REFUSED = "ingest refused a chaos batch: HTTP 409"  # as `Traffic._post` raises it


def _traffic(ledger: Ledger, blocklist: str = "") -> Traffic:
    kafka = cast(KafkaConnection, None)  # only the banks use it; they are not started here
    return Traffic(
        database_url="", kafka=kafka, ingest=[], coordination=[], blocklist=[blocklist], ledger=ledger
    )


async def test_a_loop_whose_item_raises_is_recorded_and_goes_on_as_do_the_others() -> None:
    ledger = Ledger()
    traffic = _traffic(ledger)
    items: Counter[str] = Counter()

    async def _events() -> None:
        items["events"] += 1
        if items["events"] == 1:
            raise RuntimeError(REFUSED)
        await asyncio.sleep(0.01)

    async def _blocklist() -> None:
        items["blocklist"] += 1
        await asyncio.sleep(0.01)

    traffic.drive(_events, _blocklist)
    await eventually(lambda: items["events"] > 1, timeout_s=5, every_s=0.01)  # its next item
    await traffic.stop_traffic(grace_s=5)
    abandoned = traffic.abandoned.is_set()
    await traffic.close()

    assert ledger.failures() == [{"loop": "events", "error": f"RuntimeError: {REFUSED}", "n": 1}]
    assert items["blocklist"] > 0
    assert not abandoned  # every loop ended by itself when told to stop


async def test_a_loop_whose_items_keep_failing_backs_off_until_one_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refusal that persists (a 4xx for every item) is not sent faster than the path's healthy traffic:
    the pause after a failure doubles with each failure in a row up to the most, and is short again once
    an item succeeded. Before, every failure was followed by the same 0.5 s (faster than a healthy
    blocklist item, paced at 3 s), for ever."""
    monkeypatch.setattr(traffic_module, "ITEM_BACKOFF_S", 0.2)
    monkeypatch.setattr(traffic_module, "ITEM_BACKOFF_MOST_S", 1.0)
    traffic = _traffic(Ledger())
    fails = [True, True, True, True, True, False, True, False]  # the items' outcomes, in order
    began: list[float] = []  # when each item began

    async def _blocklist() -> None:
        began.append(time.monotonic())
        if len(began) == len(fails):
            traffic.stopping.set()
        if fails[len(began) - 1]:
            raise RuntimeError("a chaos proposal was refused: HTTP 403")

    traffic.drive(_blocklist)
    await eventually(lambda: len(began) == len(fails), timeout_s=30, every_s=0.05)
    await traffic.stop_traffic(grace_s=5)
    await traffic.close()

    pauses = [later - earlier for earlier, later in itertools.pairwise(began)]
    # After the first five failures: 0.2, 0.4, 0.8, then the most, 1.0 (a sleep is never shorter).
    for pause, least in zip(pauses[:4], [0.2, 0.4, 0.8, 1.0], strict=True):
        assert pause >= least, pauses
    assert pauses[4] >= 1.0, pauses  # the fifth failure's: still the most
    assert pauses[5] < 0.1, pauses  # after the success, the item's own pace (none here)
    assert pauses[6] < 1.0, pauses  # a failure after a success: the first pause again (0.2), not the most


async def test_a_proposal_the_blocklist_asks_to_retry_is_retried_not_reported() -> None:
    """The blocklist answers a proposal 409 when a live entry for the number was made as it ran (by an
    earlier attempt that seemed to fail), and says to retry: the retry is answered that entry. The harness
    retries it, as the service asks; it is no finding. (The race cannot be made on demand against the
    service, so a stand-in answers as services/blocklist/repository.py `add` does.)"""
    proposals: list[str] = []

    def blocklist(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/blocklist/proposals":
            proposals.append(json.loads(request.content)["number"])
            if len(proposals) == 1:
                message = "a live entry for this number or account was made meanwhile; retry"
                return httpx.Response(409, json={"error": {"code": "conflict", "message": message}})
            return httpx.Response(200, json={"id": "the-entry", "status": "proposed"})
        assert request.url.path == "/v1/blocklist/entries/the-entry/review"
        return httpx.Response(200, json={"id": "the-entry", "status": "listed"})

    ledger = Ledger()
    traffic = _traffic(ledger, "http://blocklist")
    await traffic.http.aclose()
    traffic.http = httpx.AsyncClient(transport=httpx.MockTransport(blocklist))
    try:
        await traffic._blocklist()  # one item
    finally:
        await traffic.http.aclose()

    assert ledger.failures() == []
    assert len(proposals) == 2 and proposals[0] == proposals[1]  # the same number asked again
    assert ledger.blocklisted == {proposals[0]}
    message = "a live entry for this number or account was made meanwhile; retry"
    retried = ledger.retries_by_path()["blocklist"]
    assert (retried["n"], retried["by_cause"]) == (1, {f"HTTP 409 conflict: {message}": 1})
    assert retried["attempt_s"]["answered"]["n"] == 3  # the proposal twice, then its review


async def test_each_failed_attempt_is_counted_by_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch retried until ingest takes it: each failed attempt is counted by why it failed, no answer (by
    the transport error's class) or the status with the service's error and the Retry-After it asked for.
    Before, only how many: two runs whose traffic differed by half could not say why."""
    monkeypatch.setattr(traffic_module, "RETRY_S", 0.0)
    in_doubt = {"error": {"code": "in_doubt", "message": "handed to Kafka, not acknowledged yet"}}
    down = {"error": {"code": "unavailable", "message": "the database is unavailable; retry later"}}
    answers: list[Exception | httpx.Response] = [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(503, json=in_doubt, headers={"Retry-After": "2"}),
        httpx.Response(503, json=down, headers={"Retry-After": "1"}),
        httpx.Response(503, json=down, headers={"Retry-After": "1"}),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(200, json={"accepted": 1, "duplicates": []}),
    ]

    def ingest(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    ledger = Ledger()
    traffic = _traffic(ledger)
    traffic.ingest, traffic.keys = ["http://ingest"], {TELECOM: "key"}
    await traffic.http.aclose()
    traffic.http = httpx.AsyncClient(transport=httpx.MockTransport(ingest))
    try:
        assert await traffic._post(TELECOM, [{"event_id": "e-1"}])
    finally:
        await traffic.http.aclose()

    retried = ledger.retries_by_path()["events"]
    assert retried["n"] == 6
    assert retried["by_cause"] == {
        "no answer: ConnectError": 1,
        "no answer: ReadTimeout": 1,
        "HTTP 503 in_doubt: handed to Kafka, not acknowledged yet (Retry-After 2)": 1,
        "HTTP 503 unavailable: the database is unavailable; retry later (Retry-After 1)": 2,
        "HTTP 500": 1,
    }
    # Where the path's time went: each attempt's own, failed and answered.
    assert {k: spread["n"] for k, spread in retried["attempt_s"].items()} == {"failed": 6, "answered": 1}
    assert ledger.events[(TELECOM, "e-1")][1] == 7  # the attempts its batch took


async def test_the_traffics_first_items_hold_each_scam_kind_each_posted_before_its_transfer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(traffic_module, "SCAM_GAP_S", 0.0)
    posted: list[tuple[str, list[dict[str, Any]]]] = []  # (institution's key, its events), in order

    def ingest(request: httpx.Request) -> httpx.Response:
        posted.append((request.headers["Authorization"], json.loads(request.content)["events"]))
        return httpx.Response(200, json={"accepted": len(posted[-1][1]), "duplicates": []})

    ledger = Ledger()
    traffic = _traffic(ledger)
    traffic.ingest, traffic.keys = ["http://ingest"], {TELECOM: "telecom", BANK: "bank"}
    await traffic.http.aclose()
    traffic.http = httpx.AsyncClient(transport=httpx.MockTransport(ingest))
    try:
        for _ in range(traffic_module.SCAM_EVERY * len(SCAMS)):  # however short the run: each kind
            await traffic._events()
    finally:
        await traffic.http.aclose()

    leads = {CALL_SCAM: "telecom.call", SIM_SCAM: "telecom.sim_change"}
    assert sorted(ledger.scams.values()) == [CALL_SCAM, SIM_SCAM]
    for victim, kind in ledger.scams.items():
        mine = [
            (key, e["type"], e.get("amount"))
            for key, events in posted
            for e in events
            if victim in (e.get("callee"), e.get("subscriber"), e.get("payer_phone"))
        ]
        assert mine == [("Bearer telecom", leads[kind], None), ("Bearer bank", "bank.transfer", "30000.00")]


def test_the_printed_summary_says_why_attempts_failed_and_which_scams_were_alerted() -> None:
    report: dict[str, Any] = {
        "faults": {"total": 3, "by_kind": {"service_kill": 2, "database_stop": 1}, "unhealed": 0},
        "paths": {
            "events": {"items": 40, "lost": 0, "doubled": 0, "doubled_undeduplicated": 0},
            "alerts": {"items": 2, "lost": 0, "doubled": 1, "doubled_undeduplicated": 0},
        },
        "retries": {
            "events": {
                "n": 5,
                "by_cause": {"HTTP 503 unavailable: down (Retry-After 1)": 4, "no answer: ReadTimeout": 1},
            }
        },
        "pass": False,
    }
    report["paths"]["alerts"] |= {
        "scams": 3,
        "scams_alerted": 2,
        "scams_by_kind": {
            "sim_change_then_transfer": {"scams": 2, "alerted": 1},
            "call_then_transfer": {"scams": 1, "alerted": 1},
        },
    }

    assert summary(report) == [
        "faults 3 (database_stop 1, service_kill 2), 0 unhealed",
        "lost 0",
        "doubled 1 (alerts 1); where nothing drops them 0",
        "scams alerted 2 of 3 (call_then_transfer 1 of 1, sim_change_then_transfer 1 of 2)",
        "failed attempts, events: 5 (4 HTTP 503 unavailable: down (Retry-After 1); 1 no answer: ReadTimeout)",
        "FAIL",
    ]


def test_a_run_whose_traffic_met_an_unexpected_answer_fails() -> None:
    report: dict[str, Any] = {
        "faults": {"total": 1, "unhealed": 0},
        "paths": {},
        "audit": {"ok": True},
        "settle": {"settled_after_s": 1.0},
        "recovery_s": {},
        "fleet": {"ok": True},
        "traffic": {"errors": []},
    }
    assert _passed(report, faults=1)

    report["traffic"]["errors"] = [{"loop": "events", "error": f"RuntimeError: {REFUSED}", "n": 1}]

    assert not _passed(report, faults=1)


@pytest.mark.integration
async def test_an_approval_the_blocklist_refuses_is_reported(blocklist: httpx.AsyncClient) -> None:
    """Against the blocklist service: the proposal is taken, the approval refused (an auditor may not
    review). Before, the loop asked again at once, for ever, and nothing said so."""
    ledger = Ledger()
    traffic = _traffic(ledger, str(blocklist.base_url).rstrip("/"))
    await traffic.http.aclose()
    traffic.http = blocklist  # the service in-process; not closed here (the session's)
    traffic.approver = {"Authorization": f"Bearer {issue(subject='chaos-aud', role='auditor', unit=UNIT)}"}

    traffic.drive(traffic._blocklist)
    await eventually(lambda: sum(ledger.errors.values()) >= 2, timeout_s=30)  # it went on after the first
    await traffic.stop_traffic(grace_s=30)

    [(loop, error)] = ledger.errors
    assert loop == "blocklist"
    assert error.startswith(
        'RuntimeError: a chaos approval was refused: HTTP 403 {"error":{"code":"forbidden"'
    )
    assert ledger.blocklisted == set()
