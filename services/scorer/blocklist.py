"""The numbers the scorer treats as reported fraud callers, kept from the compacted `blocklist` topic.

Every scorer instance needs the whole list, not a share of its partitions, so each start reads the
topic from the beginning under a group id of its own (the ConsumerRunner; offsets it commits are never
reused). Compaction keeps the topic about the size of the list; expiry is also checked locally, so a
number stops counting on time even if the expiry record is late.
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
from streams.schemas.blocklist import change_adapter

log = logging.getLogger(__name__)


class Blocklist:
    def __init__(self) -> None:
        self._numbers: dict[str, float | None] = {}  # number → expiry (unix seconds) or None
        self._versions: dict[str, int] = {}  # number → newest version applied (the feed may repeat)

    def blocks(self, number: str, at: float | None = None) -> bool:
        """Is `number` listed (at `at`, unix seconds; default now)?"""
        if number not in self._numbers:
            return False
        expires = self._numbers[number]
        return expires is None or expires > (time.time() if at is None else at)

    def __len__(self) -> int:
        return len(self._numbers)

    async def handle(self, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                try:
                    change = change_adapter.validate_json(record.value or b"")
                except ValidationError:
                    log.error("invalid blocklist record skipped", extra={"fields": {"offset": record.offset}})
                    continue
                if change.version <= self._versions.get(change.number, 0):
                    continue
                self._versions[change.number] = change.version
                if change.status == "active":
                    self._numbers[change.number] = (
                        change.expires_at.timestamp() if change.expires_at else None
                    )
                else:
                    self._numbers.pop(change.number, None)

    def runner(self, common: CommonSettings) -> ConsumerRunner:
        group = f"{common.topic_prefix}scorer-blocklist-{uuid.uuid4().hex[:8]}"
        return ConsumerRunner(
            kafka=connection(common, acls.SCORER),
            group_id=group,
            topics=[topics.name(topics.BLOCKLIST, common.topic_prefix)],
            handle=self.handle,
            request_timeout_ms=common.kafka_request_timeout_ms,
        )
