"""What the scorer knows from the blocklist service: the numbers of reported fraud callers (the
compacted `blocklist` topic) and the known mule accounts (`blocklist.accounts`).

Every scorer instance needs the whole lists, not a share of their partitions, so each start reads the
topics from the beginning under a group id of its own (the ConsumerRunner; offsets it commits are never
reused). Compaction keeps each topic about the size of its list; expiry is also checked locally, so an
entry stops counting on time even if the expiry record is late.

`loaded` is set once the lists are read up to the ends the topics had when first asked: the account
stage joins its group only then (`Scorer._run`, within a bound), as a payment scored against half a list
is never scored again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.kit.settings import CommonSettings
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.schemas.blocklist import AccountChange, BlocklistChange, account_change_adapter, change_adapter

log = logging.getLogger(__name__)


class _Listed:
    """One list: subject → expiry (unix seconds, or None), kept at the newest version seen (the feed
    may repeat a record)."""

    def __init__(self) -> None:
        self.expiry: dict[str, float | None] = {}
        self.versions: dict[str, int] = {}

    def apply(self, subject: str, change: BlocklistChange | AccountChange) -> None:
        if change.version <= self.versions.get(subject, 0):
            return
        self.versions[subject] = change.version
        if change.status == "active":
            self.expiry[subject] = change.expires_at.timestamp() if change.expires_at else None
        else:
            self.expiry.pop(subject, None)

    def holds(self, subject: str, at: float | None) -> bool:
        if subject not in self.expiry:
            return False
        expires = self.expiry[subject]
        return expires is None or expires > (time.time() if at is None else at)


class Blocklist:
    def __init__(self) -> None:
        self._numbers = _Listed()
        self._accounts = _Listed()
        self.loaded = asyncio.Event()
        self._runner: ConsumerRunner | None = None
        self._ends: dict[TopicPartition, int] | None = None  # the topics' ends when first asked

    def blocks(self, number: str, at: float | None = None) -> bool:
        """Is `number` listed (at `at`, unix seconds; default now)?"""
        return self._numbers.holds(number, at)

    def lists_account(self, institution: str, account: str, at: float | None = None) -> bool:
        """Is the account a known mule account (at `at`, unix seconds; default now)?"""
        return self._accounts.holds(f"{institution}/{account}", at)

    def __len__(self) -> int:
        return len(self._numbers.expiry) + len(self._accounts.expiry)

    async def handle(self, batch: Batch) -> None:
        for tp, records in batch.items():
            on_accounts = tp.topic.endswith(topics.BLOCKLIST_ACCOUNTS.name)
            for record in records:
                try:
                    if on_accounts:
                        mule = account_change_adapter.validate_json(record.value or b"")
                        self._accounts.apply(f"{mule.institution}/{mule.account}", mule)
                    else:
                        number = change_adapter.validate_json(record.value or b"")
                        self._numbers.apply(number.number, number)
                except ValidationError:
                    log.error("invalid blocklist record skipped", extra={"fields": {"offset": record.offset}})
        await self._check_loaded()

    async def _check_loaded(self) -> None:
        """After a batch, or an empty poll: the runner has handed over everything it fetched, so its positions
        are what the lists hold (a transaction's marker after the last record counted too)."""
        if self.loaded.is_set() or self._runner is None or not self._runner.in_group:
            return
        consumer = self._runner.consumer
        assigned = consumer.assignment()
        if not assigned:
            return
        timeout = self._runner.request_timeout_s
        try:
            if self._ends is None:
                self._ends = await asyncio.wait_for(consumer.end_offsets(list(assigned)), timeout)
            for tp, end in (self._ends or {}).items():
                if tp not in assigned or await asyncio.wait_for(consumer.position(tp), timeout) < end:
                    return
        except (TimeoutError, KafkaError):  # asked again after the next batch or empty poll
            return
        self.loaded.set()
        log.info("blocklist loaded", extra={"fields": {"entries": len(self)}})

    def runner(self, common: CommonSettings) -> ConsumerRunner:
        group = f"{common.topic_prefix}scorer-blocklist-{uuid.uuid4().hex[:8]}"
        self._runner = ConsumerRunner(
            kafka=connection(common, acls.SCORER),
            group_id=group,
            topics=[
                topics.name(t, common.topic_prefix) for t in (topics.BLOCKLIST, topics.BLOCKLIST_ACCOUNTS)
            ],
            handle=self.handle,
            on_idle=self._check_loaded,  # empty topics, or read to their ends: no batch comes
            request_timeout_ms=common.kafka_request_timeout_ms,
        )
        return self._runner
