"""The delivery worker: claims due messages, sends them concurrently, records each result.

Claiming and recording are separate short transactions so no database connection waits on a slow
gateway; a message claimed by a worker that dies is taken again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob
from services.kit.sealing import Sealer
from services.notifier.delivery import repository, service
from services.notifier.delivery.channels import Channels
from services.notifier.delivery.models import Delivery
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import repository as warnings_repo

log = logging.getLogger(__name__)


class DeliveryWorker(PeriodicJob):
    name = "delivery round"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: NotifierSettings,
        channels: Channels,
        sealer: Sealer,
    ) -> None:
        super().__init__(interval_s=settings.worker_poll_s)
        self.sessions = sessions
        self.settings = settings
        self.channels = channels
        self.sealer = sealer
        # A lease longer than one send (timeout) plus the time to record it.
        self.lease_s = settings.send_timeout_s + 5.0

    async def once(self) -> int:
        return await self.round()

    def more_work(self, result: int) -> bool:
        return result >= self.settings.worker_batch  # a full round: more may be due

    async def round(self) -> int:
        """One claim-send-record round; returns how many messages were attempted."""
        now = datetime.now(UTC)
        async with unit_of_work(self.sessions) as session:
            claimed = await repository.claim_due(
                session, now=now, lease_s=self.lease_s, limit=self.settings.worker_batch
            )
            times = await warnings_repo.event_times(session, list({d.warning_id for d in claimed}))
        if not claimed:
            return 0
        attempts = await asyncio.gather(*(self._send(d) for d in claimed))
        done = datetime.now(UTC)
        async with unit_of_work(self.sessions) as session:
            for attempt in attempts:
                result = await service.record_attempt(
                    session,
                    attempt=attempt,
                    settings=self.settings,
                    now=done,
                    event_time=times.get(attempt.delivery.warning_id, done),
                )
                if result != "sent":
                    log.warning(
                        "warning not handed over",
                        extra=log_fields(
                            delivery=str(attempt.delivery.id),
                            channel=attempt.delivery.channel,
                            attempt=attempt.delivery.attempts,
                            result=result,
                            error=attempt.error,
                        ),
                    )
        return len(claimed)

    async def _send(self, delivery: Delivery) -> service.Attempt:
        if delivery.sealed_body is None or delivery.attempts > self.settings.max_attempts:
            # A lease ran out after the last attempt (the sender died): nothing more to try.
            return service.Attempt(delivery, False, None, "no attempts left")
        try:
            body = self.sealer.open(delivery.sealed_body, context=delivery.id.bytes)
        except InvalidTag:
            # Sealed under a key this process does not hold: this message fails, not the whole round (the
            # others' sends would go out with their results unrecorded, and go out again).
            return service.Attempt(delivery, False, None, "sealed body cannot be opened with the payload key")
        ok, status, error = await self.channels.post(delivery.channel, message_id=str(delivery.id), body=body)
        return service.Attempt(delivery, ok, status, error)
