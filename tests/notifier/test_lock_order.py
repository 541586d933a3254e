"""Transactions that lock a warning and its desk task take them in one order: none waits for another that
waits for it (a deadlock, which PostgreSQL ends by aborting one of them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.kit.db import unit_of_work
from services.notifier.cases import CoordinationCases
from services.notifier.warnings import repository, service
from tests import factories as f
from tests.kafka_tools import eventually
from tests.locks import backend, blocked_by
from tests.notifier.helpers import desk_task_for, messages_to, token_in, warnings_for


async def test_the_desk_closing_a_call_as_the_person_answers_defrauded_both_succeed(notifier, sessions):
    """The person taps "I am being defrauded" as the desk closes their call. The answer holds the warning
    (its first lock) while the close starts and waits on it; then the answer raises the call back. Both
    are applied: the answer's case and call back, then the desk's close of the call."""
    phone = f.phone()
    await notifier.alert(phone, score=0.97)
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=20)
    desk = f.officer("operator")
    taken = await notifier.client.post(f"/v1/desk/tasks/{task.id}/take", headers=desk)
    assert taken.status_code == 200, taken.text
    bridge = CoordinationCases(unit=notifier.settings.case_unit)

    async with unit_of_work(sessions) as answering:
        pid = await backend(answering)
        await repository.get(answering, task.warning_id, for_update=True)  # as the answer locks it first
        closing = asyncio.create_task(
            notifier.client.post(
                f"/v1/desk/tasks/{task.id}/close", json={"outcome": "dissuaded"}, headers=desk
            )
        )
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)
        token = token_in(str(sms[0]["text"]))
        await service.answer(answering, token=token, answer="defrauded", bridge=bridge, now=datetime.now(UTC))
    closed = await closing
    assert closed.status_code == 200, closed.text  # (a deadlock would be a 503, for the desk to try again)

    [warning] = await warnings_for(sessions, phone)
    assert (warning.answer, warning.status, warning.outcome) == ("defrauded", "closed", "reached_too_late")
    assert warning.case_id is not None
    closed_task = await desk_task_for(sessions, phone)
    assert closed_task is not None
    got = (closed_task.status, closed_task.outcome, closed_task.reason, closed_task.priority)
    assert got == ("closed", "dissuaded", "high_risk", 1.0)
