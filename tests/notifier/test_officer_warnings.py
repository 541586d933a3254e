"""What officers read from the notifier: the warnings of a case's alerts with the person's answer (no
phone number), and a period's figures for the dashboard; nobody else reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories as f
from tests.kafka_tools import eventually
from tests.notifier.helpers import desk_closes, desk_task_for, messages_to, token_in, warnings_for

pytestmark = pytest.mark.integration


async def test_officers_see_a_cases_warning_and_its_answer(notifier, sessions):
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    phone = f.phone()
    alert = await notifier.alert(phone)
    await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    token = token_in(str(messages_to(notifier.sms.receiver, phone)[0]["text"]))
    assert (await notifier.client.post(f"/v1/answers/{token}", json={"answer": "safe"})).status_code == 200

    params = {"alert_id": str(alert.alert_id)}
    got = await notifier.client.get("/v1/warnings", params=params, headers=f.officer())
    assert got.status_code == 200, got.text
    [warning] = got.json()["items"]
    [stored] = await warnings_for(sessions, phone)
    assert (warning["id"], warning["answer"], warning["outcome"]) == (str(stored.id), "safe", "dissuaded")
    assert not f.shows_phone(got.text, phone)

    summary = await notifier.client.get("/v1/warnings/summary", params={"since": since}, headers=f.officer())
    assert summary.status_code == 200, summary.text
    figures = summary.json()
    assert figures["warned"] >= 1 and figures["answered"] >= 1 and figures["safe"] >= 1

    _, bank = await f.institution(sessions, "bank")
    assert (await notifier.client.get("/v1/warnings", params=params, headers=bank)).status_code == 401
    assert (await notifier.client.get("/v1/warnings", params=params)).status_code == 401
    naive = await notifier.client.get(
        "/v1/warnings/summary", params={"since": "2026-01-01T00:00:00"}, headers=f.officer()
    )
    assert naive.status_code == 422


async def test_officers_see_the_desks_word_beside_the_persons_answer(notifier, sessions):
    """The person did not answer the SMS; the desk heard from them that they are being defrauded: officers
    reading the warning see when, where they see a person's own answer."""
    phone = f.phone()
    alert = await notifier.alert(phone, score=0.97)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    got = await notifier.client.get(
        "/v1/warnings", params={"alert_id": str(alert.alert_id)}, headers=f.officer()
    )
    assert got.status_code == 200, got.text
    [warning] = got.json()["items"]
    [stored] = await warnings_for(sessions, phone)
    assert stored.desk_defrauded_at is not None
    assert (warning["answer"], warning["outcome"]) == (None, "reached_too_late")
    assert datetime.fromisoformat(warning["desk_defrauded_at"]) == stored.desk_defrauded_at
