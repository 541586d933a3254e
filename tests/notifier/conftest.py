"""Notifier fixtures: two real local gateways (SMS, push) on random ports, and the notifier serving on
a real port too, because the gateways post receipts back and simulated citizens open their links. Its
bridge to coordination is the real one, which a test may have refuse one person's case (`RefusingCases`)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.local.common import free_port
from deploy.local.gateway import Behaviour, Receiver, serving
from services.coordination.public import ReportSource
from services.kit.errors import InvalidInput
from services.notifier.app import build
from services.notifier.cases import CoordinationCases
from services.notifier.delivery.models import Delivery
from services.notifier.settings import NotifierSettings
from services.notifier.warnings.models import CitizenWarning
from streams import groups, keys, topics
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert, Subject, alert_id_for
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import drained, eventually


@dataclass
class Gateway:
    receiver: Receiver
    port: int
    stack: contextlib.AsyncExitStack

    async def down(self) -> None:
        await self.stack.aclose()

    async def up(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        await self.stack.enter_async_context(serving(self.receiver.app(), self.port))


class RefusingCases(CoordinationCases):
    """The real bridge, except that coordination refuses (InvalidInput, its API's 422) the case of a payment
    joining the warning of a phone in `refused`, as it would a case it cannot open: the alert bringing
    that payment then fails at every attempt. The message names the phone, as a refusal's may."""

    def __init__(self, *, unit: str) -> None:
        super().__init__(unit=unit)
        self.refused: set[str] = set()

    async def defrauded(
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str, source: ReportSource
    ) -> uuid.UUID | None:
        if source == "payment" and warning.phone in self.refused:
            raise InvalidInput(f"no case can be opened for {warning.phone}")
        return await super().defrauded(session, warning=warning, actor=actor, source=source)


@dataclass
class Notifier:
    app: FastAPI
    client: httpx.AsyncClient
    settings: NotifierSettings
    sms: Gateway
    push: Gateway
    producer: Producer
    prefix: str
    cases: RefusingCases

    async def alert(self, phone: str, **spec: Any) -> Alert:
        """Produce an alert for `phone` (see `make_alert`) to the alerts topic, as the scorer would."""
        alert = self.make_alert(phone, **spec)
        await self.send(alert)
        return alert

    @staticmethod
    def make_alert(
        phone: str,
        *,
        score: float = 0.8,
        call: str | None = None,
        payee: tuple[str, str] = ("bank-x", "MULE0001"),
        amount_at_risk: str = "30000.00",
        **extra: Any,
    ) -> Alert:
        """An alert for `phone` paying `payee` (institution, account) during `call` (a new one if None)."""
        call = call or f"tel-a:{uuid.uuid4().hex[:10]}"
        transfer = f"bank-a:{uuid.uuid4().hex[:10]}"
        return f.alert(
            alert_id=alert_id_for("call_then_transfer", phone, transfer),
            score=score,
            reasons=["a long call from an unknown number, then a large transfer"],
            recommended_actions=["warn_citizen", "notify_police"],
            subject=Subject(
                phone=phone,
                account="ACC0001",
                institution="bank-a",
                payee_account=payee[1],
                payee_institution=payee[0],
            ),
            triggering_event_ids=[call, transfer],
            amount_at_risk=amount_at_risk,
            scorer_version="test",
            **extra,
        )

    async def send(self, alert: Alert) -> None:
        """Produce `alert` (a revision, a redelivery) to the alerts topic, keyed by its person."""
        assert alert.subject.phone is not None
        record = Record(
            topics.name(topics.ALERTS, self.prefix),
            alert.model_dump_json().encode(),
            keys.person_key(alert.subject.phone),
        )
        await self.producer.send_all([record])


async def _gateway(secret_sms: str, secret_push: str) -> Gateway:
    gw = Gateway(Receiver(secret_sms, secret_push, Behaviour()), free_port(), contextlib.AsyncExitStack())
    await gw.up()
    return gw


async def _none_in_flight(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """No message to a citizen waits to be delivered (or given up)."""
    async with sessions() as s:
        stmt = select(func.count()).where(Delivery.status.in_(("pending", "sending", "sent")))
        return (await s.execute(stmt)).scalar_one() == 0


async def _backlog_handled(infra: Infra, sessions: async_sessionmaker[AsyncSession]) -> None:
    """The alerts the session's other tests wrote before the notifier started (the scorer's, the pipeline's)
    are warned, and their messages delivered: the notifier's first test meets nothing of theirs in hand,
    and its metrics count its own alerts only."""
    alerts = topics.name(topics.ALERTS, infra.prefix)
    await drained(infra.kafka, (f"{infra.prefix}{groups.NOTIFIER_ALERTS}", [alerts]), timeout_s=60)
    await eventually(lambda: _none_in_flight(sessions), timeout_s=30)


@pytest.fixture(scope="session")
async def notifier(infra: Infra, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Notifier]:
    base = NotifierSettings()
    sms = await _gateway(base.sms_secret, base.push_secret)
    push = await _gateway(base.sms_secret, base.push_secret)
    port = free_port()
    settings = NotifierSettings(
        public_url=f"http://127.0.0.1:{port}",
        sms_url=f"http://127.0.0.1:{sms.port}/sms",
        push_url=f"http://127.0.0.1:{push.port}/push",
        send_timeout_s=0.5,
        max_attempts=3,
        backoff_s=0.2,
        backoff_max_s=1.0,
        worker_poll_s=0.1,
        answer_timeout_s=6.0,
        escalation_interval_s=0.2,
        desk_score=0.95,
    )
    cases = RefusingCases(unit=settings.case_unit)
    app = build(infra.common, settings, bridge=cases)
    producer = Producer(infra.kafka, client_id="test-notifier")
    await producer.start()
    async with app.router.lifespan_context(app), serving(app, port) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await _backlog_handled(infra, sessions)
            yield Notifier(app, client, settings, sms, push, producer, infra.prefix, cases)
    await producer.stop()
    await sms.down()
    await push.down()
