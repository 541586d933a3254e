"""Institution users: a person at a bank signs in with a password (not the machine's API key), gets a
session token with exactly the institution's rights, and the token stops working at sign-out and when
it expires. Answers given so name the person in the audit trail."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from services.institutions import credentials, users
from services.institutions.models import Institution, InstitutionSession
from services.kit.audit.models import AuditEntry
from services.kit.db import unit_of_work
from services.kit.errors import InvalidInput, NotAuthenticated
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
    assert [r["message"]["instruction_id"] for r in listed["items"]] == [mine["id"]]
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


async def _signed_in(c, inst: str, name: str, password: str) -> dict[str, str]:
    granted = await c.post(
        "/v1/institution/sessions", json={"institution_id": inst, "username": name, "password": password}
    )
    assert granted.status_code == 201, granted.text
    return {"Authorization": f"Bearer {granted.json()['token']}"}


async def test_a_sign_out_needs_the_sessions_secret(coord, sessions):
    c = coord.client
    inst, _, _ = await bank(sessions)
    staff = await _signed_in(c, inst, "li.na", await _user(sessions, inst))
    token_id = staff["Authorization"].removeprefix(f"Bearer {users.PREFIX}").partition(".")[0]
    forged = {"Authorization": f"Bearer {users.PREFIX}{token_id}.not-the-secret"}
    assert (await c.delete("/v1/institution/sessions/current", headers=forged)).status_code == 401
    assert (await c.get("/v1/institution/instructions", headers=staff)).status_code == 200


async def test_a_new_password_ends_the_users_sessions_and_a_disabled_user_is_out(coord, sessions):
    c = coord.client
    inst, _, _ = await bank(sessions)
    staff = await _signed_in(c, inst, "li.na", await _user(sessions, inst))
    colleague = await _signed_in(c, inst, "wang.fang", await _user(sessions, inst, "wang.fang"))
    async with unit_of_work(sessions) as s:
        await users.set_password(s, institution_id=inst, username="li.na", password="a-new-secret-42")
    assert (await c.get("/v1/institution/instructions", headers=staff)).status_code == 401
    assert (await c.get("/v1/institution/instructions", headers=colleague)).status_code == 200
    staff = await _signed_in(c, inst, "li.na", "a-new-secret-42")

    async with unit_of_work(sessions) as s:
        await users.disable_user(s, institution_id=inst, username="li.na")
    assert (await c.get("/v1/institution/instructions", headers=staff)).status_code == 401
    again = await c.post(
        "/v1/institution/sessions",
        json={"institution_id": inst, "username": "li.na", "password": "a-new-secret-42"},
    )
    assert again.status_code == 401
    async with sessions() as s:
        actions = (
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == f"{inst}/li.na")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == ["institution_user.added", "institution_user.password_set", "institution_user.disabled"]


async def test_a_revoked_key_is_refused_and_the_institutions_other_keys_are_not(sessions):
    inst, old = await f.institution(sessions, "bank")
    async with unit_of_work(sessions) as s:
        new = await credentials.issue_key(s, institution_id=inst)
    old_key = old["Authorization"].removeprefix("Bearer ")
    async with unit_of_work(sessions) as s:
        await credentials.revoke_key(s, institution_id=inst, key_id=credentials.parse_key(old_key)[0])
    verifier = credentials.CredentialVerifier(sessions)
    with pytest.raises(NotAuthenticated, match="revoked"):
        await verifier.verify(old_key)
    assert (await verifier.verify(new)).institution_id == inst
    with pytest.raises(InvalidInput, match="no unrevoked key"):  # once is enough; another's key is not its
        async with unit_of_work(sessions) as s:
            await credentials.revoke_key(s, institution_id=inst, key_id=credentials.parse_key(old_key)[0])


@pytest.mark.parametrize("ident", ["Bank_A", "b", "bank.a", "stopline-bank", "-bank", "x" * 41])
async def test_an_institution_id_the_event_schemas_refuse_is_refused_at_creation(sessions, ident):
    with pytest.raises(InvalidInput) as refused:
        async with unit_of_work(sessions) as s:
            await credentials.create_institution(s, institution_id=ident, kind="bank", name=ident)
    assert refused.value.details[0]["field"] == "id"
    async with sessions() as s:
        assert await s.get(Institution, ident) is None
