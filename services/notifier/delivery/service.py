"""Delivery rules: which channels a warning goes out on, the retry schedule, and receipts."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.db import after_commit
from services.kit.errors import NotFound
from services.kit.sealing import Sealer
from services.notifier import metrics, templates
from services.notifier.delivery import repository
from services.notifier.delivery.models import Delivery
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import repository as warnings_repo
from services.notifier.warnings.models import CitizenWarning
from streams.schemas.warnings import PushMessage, Receipt, SmsMessage

# A gateway that says the request itself is wrong will say so again: no point retrying those.
PERMANENT = frozenset({400, 401, 403, 404, 410, 413, 422})


def answer_link(settings: NotifierSettings, token: str, language: str) -> str:
    """The one-time link; the page opens in the person's language (the token alone says nothing)."""
    return f"{settings.public_url}/a/{token}?l={language}"


async def enqueue(
    session: AsyncSession,
    *,
    warning: CitizenWarning,
    token: str,
    push_id: str | None,
    settings: NotifierSettings,
    sealer: Sealer,
    now: datetime,
) -> list[str]:
    """Queue the warning on every configured channel the person can be reached on; return the channels."""
    link = answer_link(settings, token, warning.language)
    title, text = templates.render(warning.language, link=link)
    rows: list[dict[str, object]] = []
    if settings.sms_url:
        ident = uuid.uuid4()
        body = SmsMessage(
            message_id=ident,
            to=warning.phone,
            language=warning.language,
            text=text,
            receipt_url=f"{settings.public_url}/v1/receipts/sms",
        )
        rows.append(_row(ident, warning.id, "sms", body.model_dump_json().encode(), sealer, now))
    if settings.push_url and push_id:
        ident = uuid.uuid4()
        push = PushMessage(
            message_id=ident,
            to=push_id,
            language=warning.language,
            title=title,
            body=text,
            answer_url=link,
            receipt_url=f"{settings.public_url}/v1/receipts/push",
        )
        rows.append(_row(ident, warning.id, "push", push.model_dump_json().encode(), sealer, now))
    await repository.add(session, rows)
    return [str(r["channel"]) for r in rows]


def _row(
    ident: uuid.UUID, warning_id: uuid.UUID, channel: str, body: bytes, sealer: Sealer, now: datetime
) -> dict[str, object]:
    return {
        "id": ident,
        "warning_id": warning_id,
        "channel": channel,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "sealed_body": sealer.seal(body, context=ident.bytes),
    }


def retry_delay(attempt: int, settings: NotifierSettings) -> float:
    """Exponential backoff from `backoff_s`, capped, with jitter so retries of many do not align."""
    base = min(settings.backoff_s * 2.0 ** (attempt - 1), settings.backoff_max_s)
    return base * random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class Attempt:
    delivery: Delivery
    ok: bool
    status: int | None
    error: str | None


async def record_attempt(
    session: AsyncSession,
    *,
    attempt: Attempt,
    settings: NotifierSettings,
    now: datetime,
    event_time: datetime,
) -> str:
    """Store the result of one send; return sent, retry or dead."""
    d = attempt.delivery
    if attempt.ok:
        result, values = "sent", {"status": "sent", "sent_at": now, "sealed_body": None}
    elif d.attempts >= settings.max_attempts or attempt.status in PERMANENT:
        # The dead letter: kept with its last error; the escalation job hands the person to the desk.
        result, values = "dead", {"status": "dead", "sealed_body": None, "last_error": attempt.error}
    else:
        delay = retry_delay(d.attempts, settings)
        result = "retry"
        values = {
            "status": "pending",
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": attempt.error,
        }
    if await repository.finish_attempt(session, delivery_id=d.id, attempt=d.attempts, values=values):
        after_commit(session, metrics.DELIVERIES.labels(d.channel, result).inc)
        if result == "sent":
            seconds = max((now - event_time).total_seconds(), 0)
            after_commit(session, partial(metrics.EVENT_TO_SENT.labels(d.channel).observe, seconds))
    return result


async def record_receipt(session: AsyncSession, *, channel: str, receipt: Receipt, now: datetime) -> bool:
    """Record a gateway's receipt once; a repeated receipt changes nothing. True if it changed the row."""
    delivery = await repository.get(session, receipt.message_id, for_update=True)
    if delivery is None or delivery.channel != channel:
        raise NotFound(f"no {channel} message {receipt.message_id}")
    if delivery.status in ("delivered", "failed"):
        return False
    at = receipt.at or now
    delivery.status = receipt.status
    delivery.receipt_at = at
    delivery.sealed_body = None
    after_commit(session, metrics.DELIVERIES.labels(channel, receipt.status).inc)
    if receipt.status == "delivered":
        warning = await warnings_repo.get(session, delivery.warning_id)
        await warnings_repo.mark_delivered(session, warning_id=delivery.warning_id, at=at)
        if warning is not None:
            seconds = max((at - warning.event_time).total_seconds(), 0)
            after_commit(session, partial(metrics.EVENT_TO_DELIVERED.labels(channel).observe, seconds))
    return True
