"""The simulated institutions at work: instructions arrive on `instructions.<id>` (Kafka) or as signed
webhooks; each is handled once (by message id), answered after a realistic delay through the response
topic or the coordination API; some are rejected, a few never answered; money moves on meanwhile. A notice
that an answer on the response topic was refused is logged and counted, never answered."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import ValidationError

from services.banksim.ledger import Answer, Ledger
from services.banksim.settings import BanksimSettings
from services.coordination import public as coordination
from services.kit.logging import log_fields
from services.kit.settings import CommonSettings
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.producer import Producer, Record
from streams.schemas.events import Payment, Transfer, envelope_adapter
from streams.schemas.instructions import (
    AnswerRefused,
    InstructionMessage,
    Response,
    for_institution_adapter,
)

log = logging.getLogger(__name__)


class SimBanks:
    def __init__(
        self,
        common: CommonSettings,
        settings: BanksimSettings,
        *,
        api_keys: dict[str, str],
        webhook_secrets: dict[str, str],
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """`http` reaches the coordination API (default: `settings.coordination_url`)."""
        self.common = common
        self.settings = settings
        self.api_keys = api_keys
        self.webhook_secrets = webhook_secrets
        self.rng = random.Random(settings.seed)  # noqa: S311 - a simulation, not security
        self.ledger = Ledger(
            settings.institutions,
            rng=self.rng,
            forward_after=timedelta(seconds=settings.forward_after_s),
            forward_share=settings.forward_share,
            max_layers=settings.max_layers,
        )
        self.seen: set[str] = set()  # message ids handled: repeats are dropped
        self.answered: dict[str, str] = {}  # instruction id → outcome, for tests and logs
        self.refused: list[AnswerRefused] = []  # notices of answers Stopline refused, each once
        # Each bank on Kafka connects as itself (its principal reads only its instructions and writes only
        # its answers); reading the event topics to learn balances is the simulation's own shortcut.
        self.kafka = connection(common, acls.BANKSIM)
        self.producers = {
            i: Producer(self.kafka.as_principal(i), client_id=f"banksim-{i}")
            for i in settings.kafka_institutions
        }
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(base_url=settings.coordination_url, timeout=10)
        self.runners: list[ConsumerRunner] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Each Kafka bank's principal and topics must exist (`python -m streams.acls institution`)."""
        prefix = self.common.topic_prefix
        for ident, producer in self.producers.items():
            await producer.start()
            self.runners.append(
                ConsumerRunner(
                    kafka=self.kafka.as_principal(ident),
                    group_id=f"{prefix}{ident}.instructions",
                    topics=[topics.name(topics.instructions_for(ident), prefix)],
                    handle=self._on_instructions,
                )
            )
        if self.settings.learn_from_events:
            self.runners.append(
                ConsumerRunner(
                    kafka=self.kafka,
                    group_id=f"{self.common.topic_prefix}banksim-events",
                    topics=[
                        topics.name(topics.EVENTS_BANK, self.common.topic_prefix),
                        topics.name(topics.EVENTS_PAYMENT, self.common.topic_prefix),
                    ],
                    handle=self._on_events,
                )
            )
        self.tasks = [asyncio.create_task(r.run()) for r in self.runners]
        self.tasks.append(asyncio.create_task(self._money_moves()))

    async def stop(self) -> None:
        for r in self.runners:
            r.stop()
        for t in self.tasks[len(self.runners) :]:
            t.cancel()
        await asyncio.gather(*self.tasks, *self._pending, return_exceptions=True)
        for producer in self.producers.values():
            await producer.stop()
        if self._own_http:
            await self.http.aclose()

    async def _money_moves(self) -> None:
        while True:
            for t in self.ledger.move_on(datetime.now(UTC)):
                # Debug: some 85 a second under make run's traffic, 40 MB of log an hour at info.
                log.debug("money moved on", extra=log_fields(to=t.to_institution, amount=str(t.amount)))
            await asyncio.sleep(1.0)

    async def _on_events(self, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                try:
                    event = envelope_adapter.validate_json(record.value or b"").event
                except ValidationError:
                    continue  # the dead-letter path is the scorer's business
                if (
                    isinstance(event, Transfer | Payment)
                    and event.payee_institution in self.ledger.institutions
                ):
                    self.ledger.credit(
                        event.payee_institution, event.payee_account, event.amount, at=event.occurred_at
                    )

    async def _on_instructions(self, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                try:
                    message = for_institution_adapter.validate_json(record.value or b"")
                except ValidationError:
                    log.error("unreadable instruction dropped", extra=log_fields(offset=record.offset))
                    continue
                self.receive(message, channel="kafka")

    def receive(self, message: InstructionMessage | AnswerRefused, *, channel: str) -> bool:
        """Take an instruction or notice in; False when this message id was handled before (a repeat)."""
        if message.message_id in self.seen:
            return False
        self.seen.add(message.message_id)
        if isinstance(message, AnswerRefused):
            self._refused(message)
            return True
        task = asyncio.create_task(self._handle(message, channel))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    def _refused(self, notice: AnswerRefused) -> None:
        """One of our answers was refused: nothing of it was applied. The simulated banks' answers are
        valid, so this is one that came too late or crossed another (or a bug to look at): counted and
        logged, not answered (a notice names an answer, not an instruction to act on)."""
        self.refused.append(notice)
        log.warning(
            "answer refused by Stopline",
            extra=log_fields(
                institution=notice.institution_id,
                response_id=str(notice.response_id),
                instruction_id=str(notice.instruction_id),
                code=notice.error.code,
                reason=notice.error.message,
            ),
        )

    async def _handle(self, message: InstructionMessage, channel: str) -> None:
        s = self.settings
        await asyncio.sleep(self.rng.uniform(s.delay_min_s, s.delay_max_s) / 4)
        if message.type == "instruction":
            await self._answer(message, Answer("acknowledged"), channel)
        roll = self.rng.random()
        if message.type == "instruction" and roll < s.silent_rate:
            log.info(
                "instruction left unanswered", extra=log_fields(instruction_id=str(message.instruction_id))
            )
            return
        await asyncio.sleep(self.rng.uniform(s.delay_min_s, s.delay_max_s))
        if message.type == "notice":
            self.ledger.apply(message)
            return
        if roll < s.silent_rate + s.reject_rate:
            answer = Answer("rejected", reason="the bank's legal desk refused the instruction")
        else:
            answer = self.ledger.apply(message)
        await self._answer(message, answer, channel)

    async def _answer(self, message: InstructionMessage, answer: Answer, channel: str) -> None:
        response = Response(
            response_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{message.message_id}/{answer.outcome}"),
            instruction_id=message.instruction_id,
            institution_id=message.institution_id,
            outcome=answer.outcome,
            held_amount=answer.held_amount,
            reason=answer.reason,
            query_result=answer.query_result,
            responded_at=datetime.now(UTC),
        )
        self.answered[str(message.instruction_id)] = answer.outcome
        if channel == "kafka":
            topic = topics.name(topics.responses_from(message.institution_id), self.common.topic_prefix)
            value = response.model_dump_json().encode()
            producer = self.producers[message.institution_id]
            await producer.send_all([Record(topic, value, key=str(message.instruction_id).encode())])
            return
        body = response.model_dump(
            mode="json", exclude={"instruction_id", "institution_id", "schema_version"}
        )
        headers = {"Authorization": f"Bearer {self.api_keys[message.institution_id]}"}
        url = f"/v1/institution/instructions/{message.instruction_id}/responses"
        for attempt in range(5):  # the API may be restarting: retry, the response id makes it idempotent
            try:
                r = await self.http.post(url, json=body, headers=headers)
                if r.status_code < 500:
                    if r.status_code >= 400:
                        log.warning(
                            "answer refused", extra=log_fields(status=r.status_code, body=r.text[:200])
                        )
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5 * 2**attempt)

    def check_webhook(self, institution: str, headers: dict[str, str], body: bytes) -> bool:
        secret = self.webhook_secrets.get(institution)
        return secret is not None and coordination.verify_webhook(secret, headers, body)
