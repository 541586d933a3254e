"""Decoding a consumer batch of alerts: the valid ones, and a count of those that failed validation."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from services.kit.logging import log_fields
from streams.consumer import Batch
from streams.schemas.alerts import Alert, received_alert_adapter

log = logging.getLogger(__name__)


def decode_alerts(batch: Batch) -> tuple[list[Alert], int]:
    """The scorer is ours: a bad alert is a bug to see (logged, counted by the caller), not a reason
    to stop the consumer. Fields of a newer scorer are ignored (see `ReceivedAlert`)."""
    alerts: list[Alert] = []
    invalid = 0
    for records in batch.values():
        for record in records:
            try:
                alerts.append(received_alert_adapter.validate_json(record.value or b""))
            except ValidationError as exc:
                invalid += 1
                log.error(
                    "invalid alert skipped", extra=log_fields(offset=record.offset, errors=exc.error_count())
                )
    return alerts, invalid
