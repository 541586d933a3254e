"""Takes coordination's word that an account received victims' money (the `fraud-receivers` topic: a
case closed as confirmed fraud, an executed freeze) and proposes the account for the mule list, where a
second officer reviews it as any proposal. The offset is committed after the proposal is."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.blocklist import repository, service
from services.kit import outages
from services.kit.audit import service as audit
from services.kit.db import unit_of_work
from services.kit.errors import InvalidInput
from services.kit.logging import pseudonym
from services.kit.settings import CommonSettings
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.schemas.blocklist import FraudReceiver, receiver_adapter

log = logging.getLogger(__name__)
GROUP = "blocklist-receivers"


def _reason(receiver: FraudReceiver) -> str:
    if receiver.source == "freeze":
        return f"a freeze on the account was executed in case {receiver.case_number}"
    return f"the account received victims' money in case {receiver.case_number}, confirmed as fraud"


async def take(session: AsyncSession, receiver: FraudReceiver) -> None:
    """Propose the account, once per message: a redelivery (after a crash, a retried batch) is dropped by
    its message id; a second message about a listed account joins the live entry."""
    if not await repository.first_receipt(session, receiver.message_id):
        return
    try:
        await service.propose_account(
            session,
            institution=receiver.institution,
            account=receiver.account,
            source=receiver.source,
            reason=_reason(receiver),
            case_id=receiver.case_id,
            actor=audit.Actor(receiver.decided_by, receiver.role, receiver.unit),
            now=receiver.decided_at,
        )
    except InvalidInput as refused:  # refused before any write (e.g. not a bank's account): the rest go on
        log.error(
            "fraud receiver refused",
            extra={"fields": {"account": pseudonym(receiver.account), "why": refused.message}},
        )


def build_runner(common: CommonSettings, sessions: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
    async def handle(batch: Batch) -> None:
        receivers = []
        for records in batch.values():
            for record in records:
                try:
                    receivers.append(receiver_adapter.validate_json(record.value or b""))
                except ValidationError:
                    log.error("invalid fraud receiver skipped", extra={"fields": {"offset": record.offset}})
        async with unit_of_work(sessions) as session:
            for receiver in receivers:
                await take(session, receiver)

    return ConsumerRunner(
        kafka=connection(common, acls.BLOCKLIST),
        group_id=f"{common.topic_prefix}{GROUP}",
        topics=[topics.name(topics.FRAUD_RECEIVERS, common.topic_prefix)],
        handle=handle,
        attempts=5,  # a repeated message is dropped by its id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
    )
