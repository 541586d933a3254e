"""Telling an institution that an answer it produced to its response topic was refused: an `answer_refused`
notice, through the outbox to where it reads its instructions, once per refused record, stating the
refusal as the HTTP route's 4xx body would. On the API the refusal is the answer to the call; on Kafka
nothing else would tell the bank, whose instruction would then go overdue and be escalated.

Its message id is a digest of the record (topic, partition, offset, timestamp), the outbox's unique key:
the same record handled again (a retried batch, a second consumer during a rebalance) queues nothing
more, and every refused record is told, also a record that repeats a response id refused before.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.delivery import service as delivery
from services.kit.errors import (
    FAILED_VALIDATION,
    UNPARSED,
    DomainError,
    Forbidden,
    InvalidInput,
    field_problems,
)
from services.kit.inputs import UNSTORABLE
from streams.schemas.instructions import AnswerRefused, Refusal, RefusedRecord, Response

# A notice's size is Stopline's, not the sender's: a body with thousands of problems (a query answer's
# transfers) lists the first of them, each text cut short.
MAX_DETAILS = 20
MAX_TEXT = 300


@dataclass(frozen=True)
class Refused:
    """An answer refused: why (the error the HTTP route would answer with), and the answer's and its
    instruction's ids, where the body names them readably."""

    error: DomainError
    response_id: uuid.UUID | None = None
    instruction_id: uuid.UUID | None = None

    @classmethod
    def of(cls, error: DomainError, response: Response) -> Refused:
        return cls(error, response.response_id, response.instruction_id)


def unreadable(exc: ValidationError, body: bytes) -> Refused:
    """A body that is not JSON, or that the schema refused: each problem's field (`body.<path>`) and
    reason. The ids are taken from a JSON object that names them as UUIDs, for the sender to find its
    answer by; a body that is not JSON is known only by where it was read."""
    problems = exc.errors(include_url=False, include_input=False, include_context=False)
    parsed = not any(p["type"] == "json_invalid" for p in problems)
    error = InvalidInput(
        FAILED_VALIDATION if parsed else UNPARSED, details=field_problems(problems, under="body")
    )
    if not parsed:
        return Refused(error)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:  # deeper than orjson reads: pydantic's parser took it
        return Refused(error)
    named = doc if isinstance(doc, dict) else {}
    return Refused(error, _uuid(named.get("response_id")), _uuid(named.get("instruction_id")))


def unstorable(problems: list[dict[str, str]], response: Response) -> Refused:
    return Refused.of(InvalidInput(UNSTORABLE, details=problems), response)


def wrong_sender(sender: str, response: Response) -> Refused:
    """An answer naming another institution than the topic's, which alone writes there."""
    problem = f"answers on this topic are {sender}'s; the answer names {response.institution_id}"
    error = Forbidden(problem, details=[{"field": "body.institution_id", "reason": problem}])
    return Refused.of(error, response)


def message_id(record: ConsumerRecord) -> str:
    """`refused:` and a digest of where the record was read: the same for the record read again, another
    for a record of another run's topics (the prefix), or of a topic made anew (its offsets start again,
    its records' timestamps do not)."""
    where = f"{record.topic}\0{record.partition}\0{record.offset}\0{record.timestamp}"
    return "refused:" + hashlib.blake2b(where.encode(), digest_size=16).hexdigest()


async def tell(
    session: AsyncSession, *, record: ConsumerRecord, sender: str, refused: Refused, topic_prefix: str
) -> delivery.Told:
    """Queue the notice of a refused record for its sender (none when the record was told before)."""
    notice = AnswerRefused(
        message_id=message_id(record),
        type="answer_refused",
        institution_id=sender,
        response_id=refused.response_id,
        instruction_id=refused.instruction_id,
        error=_stated(refused.error),
        record=RefusedRecord(topic=record.topic, partition=record.partition, offset=record.offset),
        refused_at=datetime.now(UTC),
    )
    return await delivery.enqueue_refusal(session, message=notice, topic_prefix=topic_prefix)


def _stated(error: DomainError) -> Refusal:
    """The error as the HTTP body states it, bounded, and in text any column and client takes (a reason
    may quote a character of the sender's body: a NUL, half a surrogate pair)."""
    message = error.message
    details = error.details
    if isinstance(details, list):
        if len(details) > MAX_DETAILS:
            message = f"{message} ({len(details)} problems; the first {MAX_DETAILS} listed)"
        details = [_texts(d) for d in details[:MAX_DETAILS] if isinstance(d, dict)]
    elif isinstance(details, dict):
        details = _texts(details)
    else:
        details = None
    return Refusal(code=error.code, message=_text(message), details=details)


def _texts(problem: dict[object, object]) -> dict[str, str]:
    return {_text(str(k)): _text(str(v)) for k, v in problem.items()}


def _text(value: str) -> str:
    clean = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return clean if len(clean) <= MAX_TEXT else clean[: MAX_TEXT - 1] + "…"


def _uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str) or len(value) > 45:  # a UUID's spellings: at most `urn:uuid:` and 36
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
