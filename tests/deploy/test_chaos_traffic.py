"""The fault suite's traffic reports every answer it does not expect (ingest refusing a retried batch, an
approval refused): each is a finding, listed in the report and failing the run, and the loop that met it
goes on with its next item. Before, the loop's task died and no one read it: the run only had less
traffic."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, cast

import httpx
import pytest

from deploy.chaos.__main__ import _passed
from deploy.chaos.traffic import UNIT, Ledger, Traffic
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
        while not traffic.stopping.is_set():
            items["events"] += 1
            if items["events"] == 1:
                raise RuntimeError(REFUSED)
            await asyncio.sleep(0.01)

    async def _blocklist() -> None:
        while not traffic.stopping.is_set():
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
