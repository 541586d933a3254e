"""Publishes blocklist changes to the compacted Kafka topic. The entries' versions are the outbox: the
feed publishes every change above its cursor, in version order, and moves the cursor after Kafka has
acknowledged, so a crash republishes (readers keep the highest version per number) and loses nothing."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.blocklist import metrics, repository, service
from services.kit.db import unit_of_work
from streams import topics
from streams.producer import Producer, Record
from streams.schemas.blocklist import number_key

log = logging.getLogger(__name__)


class Feed:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], producer: Producer, *, prefix: str, poll_s: float
    ) -> None:
        self.sessions = sessions
        self.producer = producer
        self.topic = topics.name(topics.BLOCKLIST, prefix)
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.publish()
            except Exception:  # noqa: BLE001 - the cursor did not move: the next round sends them again
                log.exception("blocklist feed round failed; retrying")
                sent = 0
            if not sent:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                except TimeoutError:
                    pass

    async def publish(self, limit: int = 500) -> int:
        async with unit_of_work(self.sessions) as session:
            cursor = await repository.feed_cursor(session)
            rows = await repository.changes_after(session, since=cursor, limit=limit, active_only=False)
            if not rows:
                return 0
            records = [
                Record(self.topic, service.to_change(r).model_dump_json().encode(), number_key(r.number))
                for r in rows
            ]
            await self.producer.send_all(records)
            newest = max(r.version or 0 for r in rows)
            await repository.set_feed_cursor(session, newest)
        metrics.PUBLISHED.inc(len(rows))
        metrics.VERSION.set(newest)
        return len(rows)
