"""A bounded schema-driven fuzz of every HTTP service, as every role, against the real services (processes
on the real Kafka and PostgreSQL): schemathesis with all its checks; any 5xx or answer outside the
published schema fails. The counts of each run are written to .local/fuzz/summary.json."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import postgres
from services.kit.tokens import issue
from tests import factories as f
from tests.conftest import Infra
from tests.fuzz.services import SERVICES, Running, services

# Alone (make test): five services and the fuzzer would starve the tests beside it of both cores.
pytestmark = [pytest.mark.integration, pytest.mark.alone]
CONFIG = Path(__file__).with_name("schemathesis.toml")
OUT = Path(".local/fuzz")
# The order decides who covers an operation: its first role that may use it gets the coverage phase
# (every boundary and negative case the schema defines, once per operation); every other role that may
# use it fuzzes it briefly. Each route is first asked once as each role: a refusal (401/403) is checked
# there against the schema (a documented status, the kit's error body), and the role is not fuzzed on
# that route (its body would never be read); public routes are fuzzed as the citizen only. Officers'
# roles that may use the same routes share a run: on those routes they are the same caller.
ROLES = ("citizen", "operator", "bank", "telecom", "supervisor", "auditor")
POLICE = ("operator", "supervisor", "auditor")
SEED = "20261130"
COVERED_EXAMPLES, SHARED_EXAMPLES = 3, 2
CONCURRENT_RUNS = 3
REFUSED = (401, 403)


@dataclass(frozen=True)
class Run:
    service: str
    role: str
    covers: tuple[str, ...]  # operation ids this run gives the coverage phase
    uses: tuple[str, ...]  # operation ids the role may use (not refused 401/403)
    skipped: tuple[str, ...]  # not fuzzed: refused on the probe already, or public (the citizen's)
    also_for: tuple[str, ...] = ()  # roles this run stands for (the same kind of caller, the same routes)


@dataclass
class Asked:
    """One probe of every route of a service as one role."""

    uses: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # answers that break the published schema


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
    with services(infra, OUT / "logs", unlimited) as up:
        yield up


@pytest.fixture(scope="module")
async def who(sessions) -> dict[str, dict[str, str]]:
    who: dict[str, dict[str, str]] = {
        role: {"Authorization": f"Bearer {issue(subject=f'fuzz-{role}', role=role, unit='changji-psb')}"}
        for role in POLICE
    }
    for kind in ("telecom", "bank"):
        who[kind] = (await f.institution(sessions, kind))[1]
    who["citizen"] = {}  # the public routes: the answer link and gateway receipts
    return who


def _placeholder(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if schema.get("type") == "integer":
        return "1"
    return str(uuid.uuid4()) if schema.get("format") == "uuid" else "x"


async def _ask(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Asked:
    """Every route of a service once, with placeholder path parameters and an empty body: which it refuses
    this caller (authentication and role come before any lookup), and whether each answer is one the
    schema publishes."""
    spec = (await http.get(f"{url}/openapi.json")).json()
    asked = Asked()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path == "/health" or path.startswith("/health/"):
                continue
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    concrete = concrete.replace("{" + parameter["name"] + "}", _placeholder(parameter))
            body: dict[str, Any] | None = {} if "requestBody" in operation else None
            answer = await http.request(method.upper(), f"{url}{concrete}", headers=headers, json=body)
            said = f"{method.upper()} {path} -> {answer.status_code}"
            if answer.status_code >= 500 or str(answer.status_code) not in operation["responses"]:
                asked.problems.append(f"{said}: not a published answer")
            if answer.status_code not in REFUSED:
                asked.uses.append(operation["operationId"])
                continue
            asked.refused.append(operation["operationId"])
            error = answer.json().get("error", {}) if _is_json(answer) else {}
            if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
                asked.problems.append(f"{said}: not the kit's error body")
    return asked


def _is_json(answer: httpx.Response) -> bool:
    return answer.headers.get("content-type", "").startswith("application/json")


async def _plan(running: Running, who: dict[str, dict[str, str]]) -> tuple[list[Run], dict[str, Any]]:
    """The runs, and what the probes found: each (service, role) asked, and any answer off the schema."""
    runs: list[Run] = []
    probed: dict[str, Any] = {"asked": [], "problems": []}
    async with httpx.AsyncClient(timeout=30) as http:
        for service in SERVICES:
            asked = {role: await _ask(http, running.urls[service], who[role]) for role in ROLES}
            for role, one in asked.items():
                probed["asked"].append((service, role, len(one.uses), len(one.refused)))
                probed["problems"] += [f"{service} as {role}: {p}" for p in one.problems]
            # Routes anyone may use (the citizen has no credential) are the citizen's to fuzz: another
            # caller's credential is not read there.
            public = set(asked["citizen"].uses)
            covered: set[str] = set()
            seen: dict[tuple[str, ...], int] = {}  # (kind of caller, the routes it may use) -> its run
            for role, one in asked.items():
                uses = tuple(op for op in one.uses if role == "citizen" or op not in public)
                if not uses and (one.uses or one.refused):
                    continue  # refused everywhere but on public routes: the probe was the whole test
                # Officers' tokens differ only in their role; with no operation, callers do not differ at all.
                caller = ("police" if role in POLICE else role) if one.uses or one.refused else "anyone"
                key = (caller, *uses)
                if key in seen:
                    runs[seen[key]] = replace(runs[seen[key]], also_for=(*runs[seen[key]].also_for, role))
                    continue
                covers = tuple(op for op in uses if op not in covered)
                covered |= set(covers)
                seen[key] = len(runs)
                skipped = tuple(op for op in (*one.uses, *one.refused) if op not in uses)
                runs.append(Run(service, role, covers, uses, skipped))
    return runs, probed


def _config(run: Run) -> Path:
    """The shared schemathesis.toml and, per operation, what this run does with it."""
    shared = tuple(op for op in run.uses if op not in run.covers)
    text = CONFIG.read_text() + f"\n[generation]\nmax-examples = {SHARED_EXAMPLES}\n"
    for ops, settings in (
        (run.covers, f"phases.coverage.enabled = true\ngeneration.max-examples = {COVERED_EXAMPLES}"),
        (shared, f"phases.coverage.enabled = false\ngeneration.max-examples = {SHARED_EXAMPLES}"),
        (run.skipped, "enabled = false"),
    ):
        if ops:
            text += f"\n[[operations]]\ninclude-operation-id = {json.dumps(list(ops))}\n{settings}\n"
    path = OUT / f"{run.service}-{run.role}.toml"
    path.write_text(text)
    return path


async def _fuzz(run: Run, url: str, headers: dict[str, str]) -> dict[str, Any]:
    phases = "examples,coverage,fuzzing,stateful" if run.covers else "examples,fuzzing"
    # "all" includes a 10 s limit on each response: how fast is the benchmarks' business, and with three
    # fuzzers, five services, Kafka and PostgreSQL on two cores an answer took 12 s once. A case here
    # only has to be answered at all, within the request timeout.
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(_config(run)),
        "run", f"{url}/openapi.json", "--checks", "all", "--seed", SEED, "--no-shrink", "--workers", "1",
        "--no-color", "--request-timeout", "20", "--max-response-time", "20", "--phases", phases,
    ]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    text = out.decode(errors="replace")
    (OUT / f"{run.service}-{run.role}.txt").write_text(text)
    tested = re.search(r"Tested: (\d+)", text)
    cases = re.search(r"(\d+) generated", text)
    found = re.search(r"(\d+) found", text)
    return {
        "service": run.service,
        "role": run.role,
        "also_for": list(run.also_for),
        "covers": len(run.covers),
        "uses": len(run.uses),
        "exit": proc.returncode,
        "operations": int(tested.group(1)) if tested else 0,
        "cases": int(cases.group(1)) if cases else 0,
        "failures": int(found.group(1)) if found else 0,
        "server_errors": text.count("Server error"),
        "seconds": round(time.monotonic() - started, 1),
    }


async def test_every_service_as_every_role(running: Running, who: dict[str, dict[str, str]]):
    started = time.monotonic()
    runs, probed = await _plan(running, who)
    assert probed["problems"] == []
    # Every role asked every route of every service; every operation some role may use gets the coverage
    # phase from one of them, once, and is fuzzed as every role that may use it.
    assert {(s, role) for s, role, _, _ in probed["asked"]} == {(s, role) for s in SERVICES for role in ROLES}
    covers = [(r.service, op) for r in runs for op in r.covers]
    assert sorted(covers) == sorted({(r.service, op) for r in runs for op in r.uses}), covers
    assert {r.service for r in runs} == set(SERVICES)
    slots = asyncio.Semaphore(CONCURRENT_RUNS)

    async def one(run: Run) -> dict[str, Any]:
        async with slots:
            return await _fuzz(run, running.urls[run.service], who[run.role])

    # The heaviest runs (coverage) first, so the short ones fill in around them.
    results = await asyncio.gather(*(one(r) for r in sorted(runs, key=lambda r: -len(r.covers))))
    totals = {
        k: sum(int(r[k]) for r in results) for k in ("operations", "cases", "failures", "server_errors")
    }
    plan = [asdict(r) for r in runs]
    summary = {"totals": totals, "runs": len(results), "seconds": round(time.monotonic() - started, 1)}
    requests = sum(uses + refused for _, _, uses, refused in probed["asked"])
    report = {**summary, "probe_requests": requests, "each": results, "plan": plan}
    (OUT / "summary.json").write_text(json.dumps(report, indent=1))
    failed = [
        f"{r['service']} as {r['role']}: see {OUT}/{r['service']}-{r['role']}.txt"
        for r in results
        if r["exit"]
    ]
    assert failed == [], totals
    assert totals["server_errors"] == 0, totals


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
        # 201: made; 200: joined the entry made; 409: raced its making (retry)
        assert {r.status_code for r in raced} <= {200, 201, 409}, [r.text for r in raced]
    return {victim, scammer, listed, account, mule}


async def test_no_phone_or_account_number_in_any_log(running: Running, who, pg_log_at: int):
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
