"""Institution users: a person at a bank signs in with a password (not the machine's API key), gets a
session token with exactly the institution's rights, and the token stops working at sign-out and when
it expires. Answers given so name the person in the audit trail."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from services.institutions import users
from services.institutions.models import InstitutionSession
from services.kit.audit.models import AuditEntry
from services.kit.db import unit_of_work
from services.kit.errors import InvalidInput
from tests import factories as f
from tests.coordination.conftest import bank, issue, open_case

pytestmark = pytest.mark.integration


async def _user(sessions, institution: str, name: str = "li.na") -> str:
    async with unit_of_work(sessions) as session:
        return await users.add_user(session, institution_id=institution, username=name)


async def test_a_bank_user_signs_in_sees_and_answers_only_their_institutions_instructions(coord, sessions):
    c = coord.client
    inst, _, _ = await bank(sessions)
    other, _, _ = await bank(sessions)
    password = await _user(sessions, inst)
    wrong = await c.post(
        "/v1/institution/sessions", json={"institution_id": inst, "username": "li.na", "password": "nope"}
    )
    assert wrong.status_code == 401
    elsewhere = await c.post(
        "/v1/institution/sessions", json={"institution_id": other, "username": "li.na", "password": password}
    )
    assert elsewhere.status_code == 401  # the user belongs to one institution only
    granted = await c.post(
        "/v1/institution/sessions", json={"institution_id": inst, "username": "li.na", "password": password}
    )
    assert granted.status_code == 201, granted.text
    staff = {"Authorization": f"Bearer {granted.json()['token']}"}

    op = f.officer()
    case = await open_case(c, op, (inst, f.account("MULE"), "500.00"))
    mine = await issue(
        c, op, case, kind="stop_payment", institution_id=inst, account=f.account("M"), amount="500.00"
    )
    theirs = await issue(c, op, case, kind="query", institution_id=other, account=f.account("O"))
    listed = (await c.get("/v1/institution/instructions", headers=staff)).json()
    assert [r["message"]["instruction_id"] for r in listed] == [mine["id"]]
    assert (await c.get(f"/v1/institution/instructions/{theirs['id']}", headers=staff)).status_code == 404
    assert (await c.get("/v1/cases", headers=staff)).status_code == 401  # not an officer

    answer = {"response_id": str(uuid.uuid4()), "outcome": "executed", "held_amount": "500.00"}
    done = await c.post(f"/v1/institution/instructions/{mine['id']}/responses", json=answer, headers=staff)
    assert done.status_code == 200, done.text
    async with sessions() as s:
        actors = (
            (
                await s.execute(
                    select(AuditEntry.actor).where(
                        AuditEntry.entity_id == mine["id"], AuditEntry.action == "instruction.executed"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert actors == [f"{inst}/li.na"]

    assert (await c.delete("/v1/institution/sessions/current", headers=staff)).status_code == 204
    assert (await c.get("/v1/institution/instructions", headers=staff)).status_code == 401


async def test_an_expired_session_is_refused(coord, sessions):
    c = coord.client
    inst, _, _ = await bank(sessions)
    password = await _user(sessions, inst, "zhang.wei")
    granted = await c.post(
        "/v1/institution/sessions",
        json={"institution_id": inst, "username": "zhang.wei", "password": password},
    )
    token = granted.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await c.get("/v1/institution/instructions", headers=headers)).status_code == 200
    token_id = token.removeprefix(users.PREFIX).partition(".")[0]
    async with unit_of_work(sessions) as s:
        await s.execute(
            update(InstitutionSession)
            .where(InstitutionSession.token_id == token_id)
            .values(expires_at=InstitutionSession.created_at)
        )
    assert (await c.get("/v1/institution/instructions", headers=headers)).status_code == 401
    forged = {"Authorization": f"Bearer {users.PREFIX}{token_id}.not-the-secret"}
    assert (await c.get("/v1/institution/instructions", headers=forged)).status_code == 401


def test_passwords_are_stored_as_salted_scrypt_hashes():
    stored = users.hash_password("correct horse battery")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert users.hash_password("correct horse battery") != stored  # salted
    assert users.check_password("correct horse battery", stored)
    assert not users.check_password("correct horse battery!", stored)


async def test_a_username_too_long_to_name_its_actions_is_refused(sessions):
    """`institution/username` names the user's answers in the audit trail (120 characters)."""
    inst, _, _ = await bank(sessions)
    with pytest.raises(InvalidInput) as refused:
        await _user(sessions, inst, "u" * (users.ACTOR_MAX - len(inst)))
    assert refused.value.details == [
        {"field": "username", "reason": f"with the institution id, at most {users.ACTOR_MAX} characters"}
    ]
    assert await _user(sessions, inst, "u" * (users.ACTOR_MAX - len(inst) - 1))
