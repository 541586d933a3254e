"""Stage two of the scorer: money movements keyed by account → per-account state → mule alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiokafka import TopicPartition
from pydantic import ValidationError

from models.features.account import AccountState, Flow
from services.scorer import metrics
from services.scorer.dead_letter import dead_letter, describe
from services.scorer.rules import MuleFanIn, Rule, actions_for
from services.scorer.settings import ScorerSettings
from streams import keys, topics
from streams.consumer import Batch
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert, Subject, alert_id_for
from streams.schemas.movements import Movement, movement_adapter

COOLDOWN_S = 6 * 3600  # one mule alert per account per six hours; the case follows the rest


class AccountStage:
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
        self.rule: Rule = rule or MuleFanIn(settings)
        self.accounts: dict[int, dict[str, AccountState]] = {}
        self._last_prune = time.monotonic()

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.accounts.setdefault(tp.partition, {})

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.accounts.pop(tp.partition, None)

    async def handle(self, batch: Batch) -> None:
        out: list[Record] = []
        alerts: list[int] = []
        for tp, records in batch.items():
            accounts = self.accounts.setdefault(tp.partition, {})
            for record in records:
                try:
                    move = movement_adapter.validate_json(record.value or b"")
                except ValidationError as exc:
                    out.append(
                        dead_letter(record, reason="invalid", detail=describe(exc), prefix=self.prefix)
                    )
                    continue
                alert = self._apply(accounts, move)
                if alert is not None:
                    out.append(self._alert_record(alert))
                    alerts.append(record.timestamp)
        if out:
            await self.producer.send_all(out)
        now_ms = time.time() * 1000
        for ts in alerts:
            metrics.SCORING_SECONDS.observe(max(now_ms - ts, 0) / 1000)
        self._maybe_prune()

    def _apply(self, accounts: dict[str, AccountState], move: Movement) -> Alert | None:
        key = f"{move.institution}/{move.account}"
        state = accounts.get(key)
        if state is None:
            state = accounts[key] = AccountState()
        at = move.occurred_at.timestamp()
        flows = state.ins if move.direction == "in" else state.outs
        if any(f.ref == move.event_ref for f in flows):
            return None  # replayed movement
        state.add(
            flows,
            Flow(at, f"{move.counterparty_institution}/{move.counterparty}", move.amount, move.event_ref),
        )
        if move.holder_phone:
            state.holder_phone = move.holder_phone
        state.last_seen = max(state.last_seen, at)
        state.prune(state.last_seen)
        if state.alerted_at is not None and at - state.alerted_at < COOLDOWN_S:
            return None
        finding = self.rule.score(state.features(at))
        if finding is None or finding.score < self.s.alert_threshold:
            return None
        state.alerted_at = at
        metrics.ALERTS.labels("mule_fan_in").inc()
        refs = [f.ref for f in state.ins if at - 3600 <= f.at <= at] + [move.event_ref]
        return Alert(
            alert_id=alert_id_for(
                "mule_fan_in", keys.account_key(move.institution, move.account).decode(), move.event_ref
            ),
            typology="mule_fan_in",
            score=finding.score,
            reasons=finding.reasons,
            recommended_actions=actions_for(finding.score, self.s, victim_known=False),
            subject=Subject(account=move.account, institution=move.institution),
            triggering_event_ids=list(dict.fromkeys(refs)),
            amount_at_risk=f"{sum(f.amount for f in state.ins if at - 3600 <= f.at <= at):.2f}",
            event_time=move.occurred_at,
            created_at=datetime.now(UTC),
            scorer_version=self.version,
        )

    def _alert_record(self, alert: Alert) -> Record:
        assert alert.subject.account and alert.subject.institution
        return Record(
            topic=topics.name(topics.ALERTS, self.prefix),
            key=keys.account_key(alert.subject.institution, alert.subject.account),
            value=alert.model_dump_json().encode(),
        )

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 10:
            return
        self._last_prune = now
        tracked = 0
        for accounts in self.accounts.values():
            newest = max((a.last_seen for a in accounts.values()), default=0.0)
            for key in [
                k for k, a in accounts.items() if a.last_seen < newest - 2 * 3600 and a.alerted_at is None
            ]:
                del accounts[key]
            tracked += len(accounts)
        metrics.TRACKED.labels("account").set(tracked)
