"""Queueing messages for delivery: in the caller's transaction, once per channel the receiver uses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.delivery import repository
from services.coordination.delivery.models import OutboxMessage
from services.institutions.models import Institution
from services.kit.errors import InvalidInput
from streams import topics
from streams.schemas.blocklist import FraudReceiver, account_key
from streams.schemas.instructions import AnswerRefused, Escalation, InstructionMessage


async def enqueue_instruction(
    session: AsyncSession, *, message: InstructionMessage, topic_prefix: str
) -> None:
    """Queue an instruction or notice for its institution's topic and/or webhook; a notice once (a second
    late answer to a superseded instruction, or its withdrawal after one, would tell it again)."""
    if message.type == "notice" and await repository.queued(session, message.message_id):
        return
    institution = await repository.institution(session, message.institution_id)
    if institution is None:
        raise InvalidInput(f"no institution {message.institution_id}")
    rows = _to_institution(
        institution,
        message_id=message.message_id,
        key=str(message.instruction_id),
        payload=message.model_dump(mode="json"),
        topic_prefix=topic_prefix,
        instruction_id=message.instruction_id,
    )
    if not rows:
        raise InvalidInput(f"institution {message.institution_id} has no delivery channel configured")
    await repository.add(session, [OutboxMessage(**row) for row in rows])


Told = Literal["queued", "repeat", "no_channel"]


async def enqueue_refusal(session: AsyncSession, *, message: AnswerRefused, topic_prefix: str) -> Told:
    """Queue the notice of a refused answer for its sender, on the channels it receives instructions on,
    once per message id (one per refused record): a batch handled again, or by two consumers at once
    during a rebalance, queues nothing more ("repeat"). Keyed on Kafka by the instruction the answer
    named, beside that instruction's own messages. "no_channel": the sender has none to be told on."""
    institution = await repository.institution(session, message.institution_id)
    rows = (
        _to_institution(
            institution,
            message_id=message.message_id,
            key=str(message.instruction_id or message.message_id),
            payload=message.model_dump(mode="json"),
            topic_prefix=topic_prefix,
        )
        if institution is not None
        else []
    )
    if not rows:
        return "no_channel"
    return "queued" if await repository.add_once(session, rows) else "repeat"


def _to_institution(
    institution: Institution,
    *,
    message_id: str,
    key: str,
    payload: dict[str, Any],
    topic_prefix: str,
    instruction_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of a message to an institution: one per channel it receives instructions on (each
    with every column, as one multi-row insert takes them)."""
    common = {
        "message_id": message_id,
        "instruction_id": instruction_id,
        "institution_id": institution.id,
        "payload": payload,
    }
    rows: list[dict[str, Any]] = []
    if institution.kafka_delivery:
        topic = topics.name(topics.instructions_for(institution.id), topic_prefix)
        rows.append({"channel": "kafka", "topic": topic, "key": key, **common})
    if institution.webhook_url:
        rows.append({"channel": "webhook", "topic": None, "key": None, **common})
    return rows


async def enqueue_escalation(session: AsyncSession, *, escalation: Escalation, topic_prefix: str) -> bool:
    """Queue an escalation once (its id names the instruction and the stage); False if it was before."""
    if await repository.queued(session, escalation.escalation_id):
        return False
    row = OutboxMessage(
        channel="kafka",
        message_id=escalation.escalation_id,
        instruction_id=escalation.instruction_id,
        institution_id=escalation.institution_id,
        topic=topics.name(topics.ESCALATIONS, topic_prefix),
        key=str(escalation.instruction_id),
        payload=escalation.model_dump(mode="json"),
    )
    await repository.add(session, [row])
    return True


async def enqueue_receiver(session: AsyncSession, *, receiver: FraudReceiver, topic_prefix: str) -> None:
    """Tell the blocklist an account received victims' money (its `fraud-receivers` topic)."""
    row = OutboxMessage(
        channel="kafka",
        message_id=receiver.message_id,
        topic=topics.name(topics.FRAUD_RECEIVERS, topic_prefix),
        key=account_key(receiver.institution, receiver.account).decode(),
        payload=receiver.model_dump(mode="json"),
    )
    await repository.add(session, [row])


async def withdraw_instruction(session: AsyncSession, instruction_id: str, *, at: datetime) -> None:
    """An instruction withdrawn is not sent any more where it has not been yet (a webhook waiting for its
    next attempt, say): dropped, in the withdrawal's transaction. An attempt already under way may land
    after the withdrawal's notice; institutions take a `<id>:cancelled` notice as final."""
    await repository.drop_unsent(session, instruction_id, at=at, why="withdrawn before delivery")
