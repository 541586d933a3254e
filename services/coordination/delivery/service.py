"""Queueing messages for delivery: in the caller's transaction, once per channel the receiver uses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.delivery import repository
from services.coordination.delivery.models import OutboxMessage
from services.kit.errors import InvalidInput
from streams import topics
from streams.schemas.blocklist import FraudReceiver, account_key
from streams.schemas.instructions import Escalation, InstructionMessage


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
    payload = message.model_dump(mode="json")
    common = {
        "message_id": message.message_id,
        "instruction_id": message.instruction_id,
        "institution_id": message.institution_id,
        "payload": payload,
    }
    rows = []
    if institution.kafka_delivery:
        topic = topics.name(topics.instructions_for(message.institution_id), topic_prefix)
        rows.append(OutboxMessage(channel="kafka", topic=topic, key=str(message.instruction_id), **common))
    if institution.webhook_url:
        rows.append(OutboxMessage(channel="webhook", **common))
    if not rows:
        raise InvalidInput(f"institution {message.institution_id} has no delivery channel configured")
    await repository.add(session, rows)


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
