"""What the scorer knows from the blocklist service: the numbers of reported fraud callers (the
compacted `blocklist` topic) and the known mule accounts (`blocklist.accounts`).

Every scorer instance needs the whole lists, not a share of their partitions, so each start reads the
topics from the beginning under a group id of its own (the ConsumerRunner; offsets it commits are never
reused). Compaction keeps each topic about the size of its list; expiry is also checked locally, so an
entry stops counting on time even if the expiry record is late.
"""

from __future__ import annotations

import logging
import time
import uuid

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

    def runner(self, common: CommonSettings) -> ConsumerRunner:
        group = f"{common.topic_prefix}scorer-blocklist-{uuid.uuid4().hex[:8]}"
        return ConsumerRunner(
            kafka=connection(common, acls.SCORER),
            group_id=group,
            topics=[
                topics.name(t, common.topic_prefix) for t in (topics.BLOCKLIST, topics.BLOCKLIST_ACCOUNTS)
            ],
            handle=self.handle,
            request_timeout_ms=common.kafka_request_timeout_ms,
        )
