"""Rate limits on the authentication paths (keys, tokens, an institution user's password), the citizen
answer link and gateway receipts (429 with Retry-After), and unknown API key ids remembered briefly (no
database lookup each)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.blocklist.app import build as build_blocklist
from services.coordination.app import build as build_coordination
from services.coordination.settings import CoordinationSettings
from services.institutions import users
from services.institutions.credentials import CredentialVerifier
from services.kit.db import unit_of_work
from services.kit.ratelimit import RateLimiter
from services.notifier.app import build as build_notifier
from services.notifier.settings import NotifierSettings
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually

SLOW = "0.001"  # a token every 1,000 s (a minute's count of 0.06): the first request passes, the next not


@contextlib.asynccontextmanager
async def _client(app: FastAPI, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc", timeout=30) as client:
        yield client


def _limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "too_many_requests"


def test_a_bucket_refills_at_its_rate():
    limiter = RateLimiter(per_s=1, burst=2)
    assert [limiter.retry_after("k", now=0) for _ in range(3)] == [None, None, 1.0]
    assert limiter.retry_after("k", now=1.0) is None  # one token back after a second
    assert limiter.retry_after("other", now=1.0) is None  # every key has its own bucket


def test_memory_is_bounded_whatever_the_keys():
    limiter = RateLimiter(per_s=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.retry_after(f"k{i}", now=0)
    assert len(limiter._buckets) == 100  # noqa: SLF001


@pytest.mark.integration
async def test_an_address_out_of_failures_keeps_the_keys_already_verified_and_looks_up_nothing(
    infra: Infra, sessions, monkeypatch
):
    """Banks behind one proxy share its address: a guesser there must not lock their keys out, nor cost a
    database lookup per guess. Past the address's failures, a key verified recently (cached) is taken;
    any other is refused (429) without a lookup."""
    monkeypatch.setenv("STOPLINE_RATE_AUTH_FAILURES_PER_MIN", "3")
    _, telecom = await f.institution(sessions, "telecom")
    _, unseen = await f.institution(sessions, "telecom")
    app = build_blocklist(infra.common)
    async with _client(app) as attacker, _client(app, "198.51.100.9") as other:
        assert (await other.get("/v1/blocklist", headers=telecom)).status_code == 200  # verified, cached
        bad = {"Authorization": "Bearer slk_0123456789ab.guess"}
        for _ in range(3):
            assert (await attacker.get("/v1/blocklist", headers=bad)).status_code == 401
        _limited(await attacker.get("/v1/blocklist", headers=bad))
        _limited(await attacker.get("/v1/blocklist", headers={"Authorization": "Bearer slk_ba9876543210.x"}))
        assert (await attacker.get("/v1/blocklist", headers=telecom)).status_code == 200
        _limited(await attacker.get("/v1/blocklist", headers=unseen))  # not looked up from there now
        assert (await other.get("/v1/blocklist", headers=unseen)).status_code == 200


@pytest.mark.integration
async def test_requests_are_limited_per_credential(infra: Infra, sessions, monkeypatch):
    monkeypatch.setenv("STOPLINE_RATE_CREDENTIAL_PER_S", SLOW)
    _, telecom = await f.institution(sessions, "telecom")
    _, other = await f.institution(sessions, "telecom")
    app = build_blocklist(infra.common)
    async with _client(app) as client:
        assert (await client.get("/v1/blocklist", headers=telecom)).status_code == 200
        _limited(await client.get("/v1/blocklist", headers=telecom))
        assert (await client.get("/v1/blocklist", headers=other)).status_code == 200
        operator = f.officer()
        assert (await client.get("/v1/blocklist/entries", headers=operator)).status_code == 200
        _limited(await client.get("/v1/blocklist/entries", headers=operator))


@pytest.mark.integration
async def test_the_answer_link_and_receipts_are_limited_per_address(infra: Infra, monkeypatch):
    monkeypatch.setenv("STOPLINE_RATE_CITIZEN_PER_MIN", "2")
    monkeypatch.setenv("STOPLINE_RATE_RECEIPTS_PER_S", SLOW)
    app = build_notifier(infra.common, NotifierSettings(consume=False))
    async with _client(app) as client, _client(app, "198.51.100.9") as neighbour:
        for token in ("guess-token-000001", "guess-token-000002"):
            answered = await client.post(f"/v1/answers/{token}", json={"answer": "safe"})
            assert answered.status_code == 404, answered.text
        _limited(await client.post("/v1/answers/guess-token-000003", json={"answer": "safe"}))
        assert (
            await neighbour.post("/v1/answers/guess-token-000004", json={"answer": "safe"})
        ).status_code == 404
        assert (await client.post("/v1/receipts/sms", content=b"{}")).status_code == 401  # unsigned
        _limited(await client.post("/v1/receipts/sms", content=b"{}"))


@pytest.mark.integration
async def test_an_unknown_key_id_is_looked_up_once(sessions):
    verifier = CredentialVerifier(sessions)
    for _ in range(5):
        with pytest.raises(Exception, match="unknown or revoked"):
            await verifier.verify("slk_0123456789ab.guess")
    assert verifier.lookups == 1
    with pytest.raises(Exception, match="malformed"):
        await verifier.verify("slk_not-a-key-id.guess")
    assert verifier.lookups == 1


@pytest.mark.integration
async def test_wrong_passwords_are_limited_per_account(infra: Infra, sessions, monkeypatch):
    monkeypatch.setenv("STOPLINE_RATE_AUTH_FAILURES_PER_MIN", "2")
    institution, _ = await f.institution(sessions, "bank")
    async with unit_of_work(sessions) as session:
        password = await users.add_user(session, institution_id=institution, username="li.na")
        other = await users.add_user(session, institution_id=institution, username="wang.fang")
    app = build_coordination(infra.common, CoordinationSettings(consume=False, relay=False, scheduler=False))

    def attempt(username: str, secret: str) -> dict[str, str]:
        return {"institution_id": institution, "username": username, "password": secret}

    async with _client(app) as client:
        for _ in range(2):
            wrong = await client.post("/v1/institution/sessions", json=attempt("li.na", "guess"))
            assert wrong.status_code == 401
        _limited(await client.post("/v1/institution/sessions", json=attempt("li.na", password)))
    async with _client(app, "198.51.100.9") as elsewhere:  # the guesser cannot lock li.na out elsewhere
        granted = await elsewhere.post("/v1/institution/sessions", json=attempt("li.na", password))
        assert granted.status_code == 201, granted.text
        granted = await elsewhere.post("/v1/institution/sessions", json=attempt("wang.fang", other))
        assert granted.status_code == 201, granted.text


@pytest.mark.integration
async def test_a_sign_in_flood_holds_no_database_connection_and_does_not_queue_without_bound(
    infra: Infra, sessions, monkeypatch
):
    """A sign-in checks its password (tens of ms of scrypt) holding no database connection, and past
    `STOPLINE_RATE_PASSWORD_CHECKS` at once the answer is 503 with Retry-After. Here more checks are held
    than coordination's pool has connections (20 and 20 more), and an officer's route still answers."""
    monkeypatch.setenv("STOPLINE_RATE_PASSWORD_CHECKS", "45")
    monkeypatch.setattr(users.PasswordChecks, "PER_ADDRESS", 45)  # (one client here stands for many)
    gate, held = _checks_held_at_a_gate(monkeypatch)
    app, body = await _sign_in_app(infra, sessions)
    async with _client(app) as attacker, _client(app, "198.51.100.9") as police:
        flood = [asyncio.create_task(attacker.post("/v1/institution/sessions", json=body)) for _ in range(45)]
        await eventually(lambda: len(held) == 45)
        answer = await police.get("/v1/alerts", headers=f.officer())
        busy = await attacker.post("/v1/institution/sessions", json=body)
        gate.set()
        answers = await asyncio.gather(*flood)
    assert answer.status_code == 200, answer.text
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
    assert {r.status_code for r in answers} <= {401, 429}


@pytest.mark.integration
async def test_one_client_holds_at_most_its_share_of_the_password_checks(infra: Infra, sessions, monkeypatch):
    """Made-up names still cost a check each: one client sending many at once would hold every check and
    have everyone's sign-in refused. Past its share it is refused itself (429); others still sign in."""
    gate, held = _checks_held_at_a_gate(monkeypatch)
    app, body = await _sign_in_app(infra, sessions)
    share = users.PasswordChecks.PER_ADDRESS
    async with _client(app) as attacker, _client(app, "198.51.100.9") as other:
        flood = [
            asyncio.create_task(attacker.post("/v1/institution/sessions", json=body)) for _ in range(share)
        ]
        await eventually(lambda: len(held) == share)
        _limited(await attacker.post("/v1/institution/sessions", json=body))
        elsewhere = asyncio.create_task(other.post("/v1/institution/sessions", json=body))
        await eventually(lambda: len(held) == share + 1)  # admitted: checking
        gate.set()
        answers = await asyncio.gather(*flood, elsewhere)
    assert {r.status_code for r in answers} == {401}


def _checks_held_at_a_gate(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, list[str]]:
    """Every sign-in's password check waits at the gate; `held` lists those checking."""
    gate, held = asyncio.Event(), []

    async def checking(password: str, found: users.Account | None) -> users.Account | None:
        held.append(password)
        await gate.wait()
        return None

    monkeypatch.setattr(users, "checked", checking)
    return gate, held


async def _sign_in_app(infra: Infra, sessions: Any) -> tuple[FastAPI, dict[str, str]]:
    """Coordination's API, and a sign-in to a bank's made-up user."""
    institution, _ = await f.institution(sessions, "bank")
    app = build_coordination(infra.common, CoordinationSettings(consume=False, relay=False, scheduler=False))
    return app, {"institution_id": institution, "username": "nobody", "password": "password1"}
