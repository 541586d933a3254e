"""Decoding a consumer batch of alerts: the valid ones, and those that failed validation with why."""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.kit.logging import log_fields
from streams.consumer import Batch
from streams.dead_letter import describe
from streams.schemas.alerts import Alert, received_alert_adapter

log = logging.getLogger(__name__)

# A record that failed validation, and why (`field: reason; ...`: no values, which may be personal data).
Invalid = tuple[ConsumerRecord, str]


def decode_alerts(batch: Batch) -> tuple[list[Alert], list[Invalid]]:
    """The scorer is ours: a bad alert is a bug to see (logged, counted or set aside by the caller), not a
    reason to stop the consumer. Fields of a newer scorer are ignored (see `ReceivedAlert`)."""
    alerts: list[Alert] = []
    invalid: list[Invalid] = []
    for records in batch.values():
        for record in records:
            try:
                alerts.append(received_alert_adapter.validate_json(record.value or b""))
            except ValidationError as exc:
                invalid.append((record, describe(exc)))
                log.error(
                    "invalid alert skipped", extra=log_fields(offset=record.offset, errors=exc.error_count())
                )
    return alerts, invalid
