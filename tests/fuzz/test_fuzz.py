"""A bounded schema-driven fuzz of every HTTP service, as every role, against the real services (processes
on the real Kafka and PostgreSQL): schemathesis with all its checks; any 5xx or answer outside the
published schema fails. The counts of each run are written to .local/fuzz/summary.json."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import postgres
from services.kit.tokens import issue
from tests import factories as f
from tests.conftest import Infra
from tests.fuzz.services import SERVICES, Running, services

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).with_name("schemathesis.toml")
OUT = Path(".local/fuzz")
ROLES = ("operator", "supervisor", "auditor", "telecom", "bank", "citizen")
# Who each service is for: they get every phase; the others get a short run (mostly refusals).
OWNERS = {
    "ingest": {"bank"},
    "coordination": {"operator", "bank"},
    "notifier": {"operator", "telecom", "citizen"},
    "blocklist": {"operator", "telecom"},
    "console": {"operator", "citizen"},  # its JSON routes; people sign in with a session cookie
}
SEED = "20261130"


@pytest.fixture(scope="module")
def pg_log_at() -> int:
    """Where PostgreSQL's log stood before the services started (what is read later is theirs)."""
    return postgres.SERVER_LOG.stat().st_size if postgres.SERVER_LOG.exists() else 0


@pytest.fixture(scope="module")
def running(infra: Infra, pg_log_at: int) -> Iterator[Running]:  # noqa: ARG001 - measured before they start
    # Every fuzz request comes from one address, many of them without a valid credential: rate limits
    # (tested on their own) would answer most of them 429 and hide the routes behind.
    unlimited = {
        f"STOPLINE_RATE_{name}": "1000000"
        for name in ("CREDENTIAL_PER_S", "AUTH_FAILURES_PER_MIN", "CITIZEN_PER_MIN", "RECEIPTS_PER_S")
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with services(infra, OUT / "logs", **unlimited) as up:
        yield up


@pytest.fixture(scope="module")
async def who(sessions) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    who: dict[str, dict[str, str]] = {
        role: {"Authorization": f"Bearer {issue(subject=f'fuzz-{role}', role=role, unit='changji-psb')}"}
        for role in ("operator", "supervisor", "auditor")
    }
    for kind in ("telecom", "bank"):
        who[kind] = (await f.institution(sessions, kind))[1]
    who["citizen"] = {}  # the public routes: the answer link and gateway receipts
    return who


async def _fuzz(service: str, url: str, role: str, headers: dict[str, str]) -> dict[str, object]:
    owner = role in OWNERS[service]
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
        "--checks", "all", "--seed", SEED, "--no-shrink", "--workers", "1", "--no-color",
        "--request-timeout", "20",
        "--phases", "examples,coverage,fuzzing,stateful" if owner else "examples,fuzzing",
        "--max-examples", "3" if owner else "2",
    ]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    text = out.decode(errors="replace")
    (OUT / f"{service}-{role}.txt").write_text(text)
    tested = re.search(r"Tested: (\d+)", text)
    cases = re.search(r"(\d+) generated", text)
    found = re.search(r"(\d+) found", text)
    return {
        "service": service,
        "role": role,
        "exit": proc.returncode,
        "operations": int(tested.group(1)) if tested else 0,
        "cases": int(cases.group(1)) if cases else 0,
        "failures": int(found.group(1)) if found else 0,
        "server_errors": text.count("Server error"),
    }


async def test_every_service_as_every_role(running: Running, who: dict[str, dict[str, str]]):
    runs = []
    for role in ROLES:  # the services side by side, one role at a time
        runs += await asyncio.gather(*(_fuzz(s, running.urls[s], role, who[role]) for s in SERVICES))
    totals = {k: sum(int(r[k]) for r in runs) for k in ("operations", "cases", "failures", "server_errors")}
    (OUT / "summary.json").write_text(json.dumps({"totals": totals, "runs": runs}, indent=1))
    failed = [
        f"{r['service']} as {r['role']}: see {OUT}/{r['service']}-{r['role']}.txt" for r in runs if r["exit"]
    ]
    assert failed == [], totals


async def _story(running: Running, who: dict[str, dict[str, str]]) -> set[str]:
    """A person's events, a case about them, their contact, a blocklist race on a number: the requests that
    carry phone and account numbers, and the errors (a conflict, a unique violation) that could log them."""
    victim, scammer, listed = f.phone(), f.phone(), f.phone()
    account, mule = f.account("6222"), f.account("6217")
    urls = running.urls
    async with httpx.AsyncClient(timeout=30) as http:
        call = f.call(victim, start=f.minutes_ago(30), minutes=20) | {"caller": scammer}
        transfer = f.transfer(
            victim, payer_account=account, payee_account=mule, amount="30000.00", at=f.minutes_ago(5)
        )
        for kind, event in (("telecom", call), ("bank", transfer)):
            sent = await http.post(f"{urls['ingest']}/v1/events", json={"events": [event]}, headers=who[kind])
            assert sent.status_code == 200, sent.text
        case = {
            "case_number": f.unique("CN"),
            "title": "call then transfer",
            "source": "report",
            "victim": {"phone": victim, "institution_id": "bank-a", "account": account},
            "amount_lost": "30000.00",
            "lost_at": f.iso(f.minutes_ago(5)),
            "destinations": [
                {
                    "institution_id": "bank-b",
                    "account": mule,
                    "amount": "30000.00",
                    "at": f.iso(f.minutes_ago(5)),
                }
            ],
        }
        cases = f"{urls['coordination']}/v1/cases"
        assert (await http.post(cases, json=case, headers=who["operator"])).status_code == 201
        assert (await http.post(cases, json=case, headers=who["operator"])).status_code == 409
        contact = {"phone": victim, "language": "ug", "push_id": f"app-{uuid.uuid4().hex}"}
        contacts = f"{urls['notifier']}/v1/contacts"
        assert (await http.put(contacts, json=contact, headers=who["telecom"])).status_code == 204
        proposal = {"number": listed, "category": "impersonation", "reason": "story"}
        raced = await asyncio.gather(
            *(
                http.post(
                    f"{urls['blocklist']}/v1/blocklist/proposals", json=proposal, headers=who["operator"]
                )
                for _ in range(6)
            )
        )
        assert {r.status_code for r in raced} <= {201, 409}, [r.text for r in raced]
    return {victim, scammer, listed, account, mule}


async def test_no_phone_or_account_number_in_any_log(running: Running, who, pg_log_at: int):  # type: ignore[no-untyped-def]
    """After the fuzz and a story: no number of theirs in the services' logs or in PostgreSQL's; nor any
    phone number at all (an E.164 number in a log can only be a leak)."""
    numbers = await _story(running, who)
    logs = {name: path.read_text(errors="replace") for name, path in running.logs.items()}
    if postgres.running() is not None:
        with postgres.SERVER_LOG.open("rb") as server:
            server.seek(pg_log_at)
            logs["postgres"] = server.read().decode(errors="replace")
    leaks = {name: sorted(n for n in numbers if n in text) for name, text in logs.items()}
    assert all(not found for found in leaks.values()), leaks
    phones = {name: re.findall(r"\+[1-9][0-9]{6,14}\b", text)[:5] for name, text in logs.items()}
    assert all(not found for found in phones.values()), phones
