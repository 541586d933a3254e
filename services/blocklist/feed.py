"""Publishes blocklist changes to the compacted Kafka topics (numbers on `blocklist`, mule accounts on
`blocklist.accounts`). The entries' versions are the outbox: the
feed publishes every change above its cursor, in version order, and moves the cursor after Kafka has
committed, so a crash republishes (readers keep the highest version per subject) and loses nothing.

The topics are compacted: the last record of a subject is what a reader starting later sees, so an older
change must never land after a newer one. A publication given up on (Kafka slow to answer, or the cursor's
lock lost to a PostgreSQL restart, when another instance takes over) may still land later. So every
instance publishes in a Kafka transaction under one transactional id. Starting a producer with that id
fences every earlier one (its open transaction is aborted, or completed if it had asked to commit, before
anything new is written, and nothing of it can land afterwards), and a producer started later fences this
one, whose next transaction then fails. So a producer that has not been fenced was started after every
other publication's, before the rows it publishes were read; one is started again only after a
transaction of its own failed or was given up on, before anything is read: at once when its records
were refused as fenced (the other instance started since), at the next tick otherwise. Readers read
committed."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.blocklist import metrics, repository, service
from services.blocklist.models import Entry
from services.kit.db import unit_of_work
from services.kit.errors import InDoubt
from services.kit.periodic import PeriodicJob
from streams import topics
from streams.producer import Fenced, Producer, Record, abandon
from streams.schemas.blocklist import account_key, number_key

log = logging.getLogger(__name__)


class Feed(PeriodicJob):
    name = "blocklist feed"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], producer: Producer, *, prefix: str, poll_s: float
    ) -> None:
        super().__init__(interval_s=poll_s)
        self.sessions = sessions
        self.producer = producer
        self.numbers = topics.name(topics.BLOCKLIST, prefix)
        self.accounts = topics.name(topics.BLOCKLIST_ACCOUNTS, prefix)

    async def once(self) -> int:
        return await self.publish()

    def more_work(self, result: int) -> bool:
        return result > 0  # the cursor moved: there may be more changes behind it

    async def publish(self, limit: int = 500) -> int:
        async with unit_of_work(self.sessions) as session:
            cursor = await repository.feed_cursor(session)
            rows = await self._publish_fenced(session, cursor, limit)
            if not rows:
                return 0
            newest = max(r.version or 0 for r in rows)
            await repository.set_feed_cursor(session, newest)
        metrics.PUBLISHED.inc(len(rows))
        metrics.VERSION.set(newest)
        return len(rows)

    async def _publish_fenced(self, session: AsyncSession, cursor: int, limit: int) -> list[Entry]:
        """Publish the changes after the cursor in one transaction; the rows published."""
        restarted = self.producer.unsettled  # started again in the first attempt
        try:
            return await self._attempt(session, cursor, limit)
        except Fenced:
            # The other instance started or published since this one's producer started, and nothing of
            # this landed: a takeover, not a failure, so the producer is started again at once, not at the
            # next tick. Not twice in a run: fenced just after its own start, the other may be an instance
            # that lost the cursor's lock, and the lock is not held for two starts.
            if restarted:
                raise
            return await self._attempt(session, cursor, limit)

    async def _attempt(self, session: AsyncSession, cursor: int, limit: int) -> list[Entry]:
        # Fenced before the rows are read: a publisher that lost the lock (a PostgreSQL restart) and
        # fences after this one can no longer read them on its dead connection, and one that fenced
        # before can no longer write after this one. Read first, a slow fence of the other's would let
        # it publish what it read before this publication, after it. A producer not fenced since its
        # start (each start is before a read) needs none: starting one costs a connection to Kafka.
        if self.producer.unsettled:
            await self.producer.restart()
            metrics.FENCES.inc()
            session.expire_all()  # read again, not the entities of an attempt before
        rows = await repository.changes_after(session, since=cursor, limit=limit, active_only=False)
        if not rows:
            return rows
        delivery = await self.producer.transact([self._record(r) for r in rows])
        try:
            await asyncio.wait_for(asyncio.shield(delivery), self.producer.timeout_s)
        except TimeoutError as exc:
            abandon(delivery)  # fenced by the next publication
            raise InDoubt("Kafka has not committed the blocklist changes yet") from exc
        return rows

    def _record(self, entry: Entry) -> Record:
        value = service.to_change(entry).model_dump_json().encode()
        if entry.kind == "account":
            return Record(self.accounts, value, account_key(entry.institution or "", entry.account or ""))
        return Record(self.numbers, value, number_key(entry.number or ""))
