"""Stage one of the scorer: events keyed by person → per-person state → call-then-transfer alerts,
plus every money movement re-keyed by account for stage two (mule detection)."""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from models.features.person import CallSeen, MoneyOut, PersonState
from services.scorer import metrics
from services.scorer.dead_letter import dead_letter, describe
from services.scorer.rules import CallThenTransfer, Rule, actions_for
from services.scorer.settings import ScorerSettings
from streams import keys, topics
from streams.consumer import Batch
from streams.producer import Producer, Record
from streams.schemas import events as ev
from streams.schemas.alerts import Alert, Subject, alert_id_for, event_ref
from streams.schemas.movements import Movement

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # the prefecture keeps Beijing time; hour-of-day features use it
DEDUP_S = 3600.0


class PersonStage:
    """Holds the state of the person partitions assigned to this instance."""

    def __init__(
        self,
        settings: ScorerSettings,
        producer: Producer,
        *,
        prefix: str,
        version: str,
        rule: Rule | None = None,
    ) -> None:
        self.s = settings
        self.producer = producer
        self.prefix = prefix
        self.version = version
        self.rule: Rule = rule or CallThenTransfer(settings)
        self.people: dict[int, dict[str, PersonState]] = {}
        self.seen: dict[int, OrderedDict[str, float]] = {}
        self._last_prune = time.monotonic()

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.people.setdefault(tp.partition, {})
            self.seen.setdefault(tp.partition, OrderedDict())

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        # Co-partitioned topics move together (range assignor), so partition n's state goes with them.
        for tp in partitions:
            self.people.pop(tp.partition, None)
            self.seen.pop(tp.partition, None)

    async def handle(self, batch: Batch) -> None:
        out: list[Record] = []
        alerts: list[tuple[Record, int]] = []
        count = 0
        for tp, records in batch.items():
            for record in records:
                count += 1
                self._one(tp.partition, record, out, alerts)
        metrics.BATCH_EVENTS.observe(count)
        if out or alerts:
            await self.producer.send_all(out + [r for r, _ in alerts])
        now_ms = time.time() * 1000
        for _, source_ts in alerts:
            metrics.SCORING_SECONDS.observe(max(now_ms - source_ts, 0) / 1000)
        self._maybe_prune()

    def _one(
        self, partition: int, record: ConsumerRecord, out: list[Record], alerts: list[tuple[Record, int]]
    ) -> None:
        try:
            envelope = ev.envelope_adapter.validate_json(record.value or b"")
        except ValidationError as exc:
            out.append(dead_letter(record, reason="invalid", detail=describe(exc), prefix=self.prefix))
            return
        event = envelope.event
        if record.key != keys.person_key(event.person_phone):
            out.append(
                dead_letter(
                    record,
                    reason="wrong_key",
                    detail="key must be streams.keys.person_key",
                    prefix=self.prefix,
                )
            )
            return
        ref = event_ref(envelope.institution, event.event_id)
        seen = self.seen.setdefault(partition, OrderedDict())
        if ref in seen:
            metrics.DUPLICATES.inc()
            return
        seen[ref] = time.monotonic()
        metrics.EVENTS.labels(event.type).inc()
        people = self.people.setdefault(partition, {})
        person = people.get(event.person_phone)
        if person is None:
            person = people[event.person_phone] = PersonState()
        at = event.occurred_at.timestamp()
        person.last_seen = max(person.last_seen, at)
        person.prune(person.last_seen, self.s.state_horizon_hours * 3600)
        for alert in self._apply(person, envelope.institution, event, ref, at):
            alerts.append((self._alert_record(alert), record.timestamp))
        if isinstance(event, ev.Transfer | ev.Payment):
            out.extend(self._movements(envelope.institution, event, ref, record.timestamp))

    def _apply(
        self, person: PersonState, institution: str, event: object, ref: str, at: float
    ) -> list[Alert]:
        if isinstance(event, ev.Call):
            known = person.record_contact(event.caller, at)
            call = CallSeen(event.caller, at, at + event.duration_s, event.caller_reported, known, ref)
            person.record_call(call)
            # The call record arrives when the call ends: money may already have left during it.
            late = [o for o in person.outs if call.start <= o.at <= call.end + 3600]
            return [a for o in late if (a := self._evaluate(person, o, event.callee)) is not None]
        if isinstance(event, ev.Sms):
            person.record_contact(event.sender, at)
        elif isinstance(event, ev.SimChange):
            person.sim_change_at = at
        elif isinstance(event, ev.Login) and event.new_device:
            person.new_device_at = at
        elif isinstance(event, ev.Transfer | ev.Payment):
            payee = f"{event.payee_institution}/{event.payee_account}"
            known_payee = payee in person.payees and person.payees[payee] < at
            money = MoneyOut(
                at=at,
                payee=payee,
                amount=float(event.amount),
                payee_new=not known_payee,
                ref=ref,
                institution=institution,
                account=event.payer_account,
                payee_account=event.payee_account,
                payee_institution=event.payee_institution,
            )
            person.record_out(money)
            alert = self._evaluate(person, money, event.payer_phone)
            return [alert] if alert else []
        return []

    def _evaluate(self, person: PersonState, money: MoneyOut, phone: str) -> Alert | None:
        hour = datetime.fromtimestamp(money.at, LOCAL_TZ).hour
        features, call = person.features(money, hour)
        finding = self.rule.score(features)
        if finding is None or call is None or finding.score < self.s.alert_threshold:
            return None
        key = f"call_then_transfer|{call.ref}"  # one alert per scam call, however many transfers follow
        if key in person.alerted:
            return None
        person.alerted[key] = money.at
        metrics.ALERTS.labels("call_then_transfer").inc()
        return Alert(
            alert_id=alert_id_for("call_then_transfer", keys.person_key(phone).decode(), call.ref),
            typology="call_then_transfer",
            score=finding.score,
            reasons=finding.reasons,
            recommended_actions=actions_for(finding.score, self.s, victim_known=True),
            subject=Subject(
                phone=phone,
                account=money.account,
                institution=money.institution,
                payee_account=money.payee_account,
                payee_institution=money.payee_institution,
            ),
            triggering_event_ids=[call.ref, money.ref],
            amount_at_risk=f"{money.amount:.2f}",
            event_time=datetime.fromtimestamp(max(money.at, call.end), UTC),
            created_at=datetime.now(UTC),
            scorer_version=self.version,
        )

    def _alert_record(self, alert: Alert) -> Record:
        subject_key = keys.person_key(alert.subject.phone) if alert.subject.phone else None
        return Record(
            topic=topics.name(topics.ALERTS, self.prefix),
            key=subject_key,
            value=alert.model_dump_json().encode(),
        )

    def _movements(
        self, institution: str, event: ev.Transfer | ev.Payment, ref: str, ts: int
    ) -> list[Record]:
        topic = topics.name(topics.TRANSFERS_BY_ACCOUNT, self.prefix)
        common = {"amount": float(event.amount), "occurred_at": event.occurred_at, "event_ref": ref}
        inflow = Movement(
            direction="in",
            account=event.payee_account,
            institution=event.payee_institution,
            counterparty=event.payer_account,
            counterparty_institution=institution,
            **common,
        )
        outflow = Movement(
            direction="out",
            account=event.payer_account,
            institution=institution,
            counterparty=event.payee_account,
            counterparty_institution=event.payee_institution,
            holder_phone=event.payer_phone,
            **common,
        )
        return [
            Record(
                topic,
                orjson.dumps(m.model_dump(mode="json")),
                keys.account_key(m.institution, m.account),
                timestamp_ms=ts,
            )
            for m in (inflow, outflow)
        ]

    def _maybe_prune(self) -> None:
        """Every few seconds, forget people silent for longer than the horizon and old dedup ids."""
        now = time.monotonic()
        if now - self._last_prune < 10:
            return
        self._last_prune = now
        horizon = self.s.state_horizon_hours * 3600
        tracked = 0
        for people in self.people.values():
            newest = max((p.last_seen for p in people.values()), default=0.0)
            for phone in [ph for ph, p in people.items() if p.last_seen < newest - horizon]:
                del people[phone]
            tracked += len(people)
        for seen in self.seen.values():
            while seen and next(iter(seen.values())) < now - DEDUP_S:
                seen.popitem(last=False)
        metrics.TRACKED.labels("person").set(tracked)
