"""Stage two of the scorer: money movements keyed by account → per-account state. Each inflow is joined
with the payer's features from stage one and scored by the model, all inflows of a consumer batch in one
call, then hard rules (reported or blocked numbers, known mule accounts) and thresholds → actions.
Outflows feed the mule fan-in rule on the paying account."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from aiokafka import TopicPartition
from pydantic import ValidationError

from models.features.account import AccountState
from models.features.codec import decode, encode, layout
from models.features.engine import account
from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from services.kit.settings import CommonSettings
from services.scorer import explain, metrics
from services.scorer.books import Book
from services.scorer.dead_letter import dead_letter, describe, untimely
from services.scorer.hooks import FraudKnowledge, NothingKnown
from services.scorer.model_slot import ModelSlot
from services.scorer.rules import MuleFanIn, Rule, actions_for
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import Checkpoints, SnapshotStore
from streams import keys, topics
from streams.consumer import Batch, Landing
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert, AlertPayment, Subject, Typology, alert_id_for, incident_id_for
from streams.schemas.event_time import EventTimeBounds
from streams.schemas.movements import Movement, movement_adapter

COOLDOWN_S = 6 * 3600  # one mule alert per account per six hours; the case follows the rest
F = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass
class Pending:
    """An inflow waiting for the batch's one model call."""

    move: Movement
    state: AccountState
    row: list[float]
    source_ts: int
    cold: bool = False  # the partition's state covers too little time for the 24 h windows to mean much
    replay: bool = False  # read again after a restore: state is updated, no alert is sent


class AccountStage:
    def __init__(
        self,
        settings: ScorerSettings,
        producer: Producer,
        *,
        prefix: str,
        version: str,
        model: ModelSlot,
        rule: Rule | None = None,
        knowledge: FraudKnowledge | None = None,
        snapshots: SnapshotStore | None = None,
        bounds: EventTimeBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s = settings
        self.producer = producer
        self.prefix = prefix
        # Movements meet the events' time bounds again (dead letter otherwise): one dated 9999 would be an
        # account never forgotten, and windows counted from a date no other movement reaches.
        self.bounds = bounds or CommonSettings().event_time_bounds()
        self.clock = clock
        self.version = version
        self.model = model
        self.rule: Rule = rule or MuleFanIn(settings)
        self.knowledge: FraudKnowledge = knowledge or NothingKnown()
        self.accounts: dict[int, Book[AccountState]] = {}
        self.watching_since: dict[int, float] = {}  # per partition: the oldest event time its state holds
        self.checkpoints = Checkpoints(
            snapshots,
            stage="accounts",
            layout=layout(AccountState),
            interval_s=settings.snapshot_interval_seconds,
            export=lambda n: {k: encode(a) for k, a in self.accounts.get(n, Book()).items()},
            restore=self._restore,
            on_revoke=settings.snapshot_on_revoke,
        )

    def _restore(self, partition: int, state: dict[str, object]) -> None:
        self.accounts[partition] = Book.restored({k: decode(AccountState, a) for k, a in state.items()})

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.accounts.setdefault(tp.partition, Book())

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        await self.checkpoints.release(partitions)
        for tp in partitions:
            self.accounts.pop(tp.partition, None)
            self.watching_since.pop(tp.partition, None)

    async def handle(self, batch: Batch) -> Landing:
        self.model.maybe_swap()  # between batches: a promotion never splits one
        out: list[Record] = []
        alerts: list[tuple[Alert, int]] = []
        pending: list[Pending] = []
        for tp, records in batch.items():
            accounts = self.accounts.setdefault(tp.partition, Book())
            for record in records:
                # Read again after a restore: the previous owner sent this record's alerts already.
                replay = self.checkpoints.replaying(tp, record.offset)
                try:
                    move = movement_adapter.validate_json(record.value or b"")
                except ValidationError as exc:
                    if not replay:
                        out.append(
                            dead_letter(record, reason="invalid", detail=describe(exc), prefix=self.prefix)
                        )
                    continue
                late = untimely(
                    record, move.occurred_at, bounds=self.bounds, now=self.clock(), prefix=self.prefix
                )
                if late is not None:
                    if not replay:
                        out.append(late)
                    continue
                if move.direction == "out":
                    alert = self._outflow(accounts, move)
                    if alert is not None and not replay:
                        alerts.append((alert, record.timestamp))
                else:
                    waiting = self._inflow(tp.partition, accounts, move, record.timestamp)
                    if waiting is not None:
                        waiting.replay = replay
                        pending.append(waiting)
        alerts += self._score(pending)
        out += [self._alert_record(a) for a, _ in alerts]
        landing = await self.producer.enqueue(out) if out else None  # acknowledged while the next is scored
        if landing is not None and alerts:
            landing.add_done_callback(lambda _: _observe_alerted([ts for _, ts in alerts]))
        self.prune()
        return landing

    def _inflow(
        self, partition: int, accounts: Book[AccountState], move: Movement, ts: int
    ) -> Pending | None:
        key = f"{move.institution}/{move.account}"
        state = account(accounts, key)
        at = move.occurred_at.timestamp()
        accounts.touched(key, at)
        since = self._watching_since(partition, accounts, at)
        payer = f"{move.counterparty_institution}/{move.counterparty}"
        if not move.rescore and not state.record_in(at, payer, move.amount, move.event_ref):
            return None  # a replayed movement: counted and scored already
        if move.person_features is None or move.payer_phone is None:
            metrics.SKIPPED.labels("no_features").inc()
            return None
        if move.feature_set != FEATURE_SET_HASH:
            # Stage one runs other feature code (a rolling upgrade): its numbers would be misread.
            metrics.SKIPPED.labels("feature_set").inc()
            return None
        cold = at - since < self.s.model_warmup_hours * 3600
        return Pending(move, state, move.person_features + state.payee_features(at), ts, cold)

    def _watching_since(self, partition: int, accounts: Book[AccountState], at: float) -> float:
        """The oldest event time this partition's state holds: from restored accounts the first time (a
        snapshot keeps their history), then lowered by any older event."""
        since = self.watching_since.get(partition)
        if since is None:
            since = min((a.first_seen for a in accounts.values() if a.first_seen is not None), default=at)
        since = self.watching_since[partition] = min(since, at)
        return since

    def _score(self, pending: list[Pending]) -> list[tuple[Alert, int]]:
        if not pending:
            return []
        rows = np.array([p.row for p in pending], dtype=np.float64)
        scores = self.model.score(rows)  # the micro-batch: one call for every inflow of the batch
        metrics.SCORED.inc(len(pending))
        threshold = self.model.threshold
        chosen: list[tuple[int, float, list[str]]] = []
        for i, p in enumerate(pending):
            score, hard = self._hard_rules(p, float(scores[i]))
            if p.cold and not hard:
                # A state younger than the windows (fresh start, or replayed history) sees every account
                # as new: the model would alert on ordinary payees. Only hard rules alert until it fills.
                metrics.SKIPPED.labels("cold_state").inc()
                continue
            # A replayed inflow still marks its trigger as alerted, so it is not alerted on again.
            # A hard rule alerts whatever the model threshold is set to.
            if (score >= threshold or hard) and self._first_alert(p) and not p.replay:
                chosen.append((i, score, hard))
        if not chosen:
            return []
        index = [i for i, _, _ in chosen]
        words = explain.reasons(rows[index], scores[index], self.model.live.typical, self.model.live.score)
        return [
            (self._victim_alert(pending[i], score, hard + said), pending[i].source_ts)
            for (i, score, hard), said in zip(chosen, words, strict=True)
        ]

    def _hard_rules(self, p: Pending, score: float) -> tuple[float, list[str]]:
        """Facts that alert whatever the model says, with their reason first."""
        move, f = p.move, p.row
        said = []
        if self._blocked_caller(move):
            said.append("the caller's number is on the fraud blocklist")
        elif f[F["caller_reported"]] and f[F["payee_new"]] and move.amount >= self.s.large_amount:
            said.append("the caller's number has been reported for fraud by its operator")
        if self.knowledge.is_known_mule(move.institution, move.account):
            said.append("the payee account is a known mule account")
        return (max(score, self.s.hard_rule_score) if said else score), said

    def _blocked_caller(self, move: Movement) -> bool:
        """Whether the call before the payment came from a number on the blocklist."""
        return bool(move.call_caller) and self.knowledge.is_blocked_number(move.call_caller or "")

    def _first_alert(self, p: Pending) -> bool:
        """One alert per victim and payee account: a call reported after the payment (calls are
        reported when they end) rescores it, but must not raise a second alert for the same money.
        Repeats are also dropped downstream by the deterministic alert id."""
        key = self._trigger(p)
        if key in p.state.alerted:
            return False
        p.state.alerted[key] = p.move.occurred_at.timestamp()
        return True

    @staticmethod
    def _trigger(p: Pending) -> str:
        move = p.move
        return f"{move.payer_phone}|{move.institution}/{move.account}"

    def _victim_alert(self, p: Pending, score: float, reasons: list[str]) -> Alert:
        move = p.move
        assert move.payer_phone is not None
        # The call is evidence if its caller was unknown, reported or is on the blocklist; without such a
        # call the victim alert is a suspicious payment (the mule account's alert is `_outflow`'s).
        f = p.row
        suspicious = f[F["caller_unknown"]] or f[F["caller_reported"]] or self._blocked_caller(move)
        call = move.call_ref if suspicious else None
        typology: Typology = "call_then_transfer" if call else "suspicious_payment"
        metrics.ALERTS.labels(f"model_{typology}").inc()
        return Alert(
            alert_id=alert_id_for(typology, keys.person_key(move.payer_phone).decode(), self._trigger(p)),
            typology=typology,
            score=round(min(score, 1.0), 4),
            reasons=reasons,
            recommended_actions=actions_for(score, self.s, victim_known=True),
            subject=Subject(
                phone=move.payer_phone,
                account=move.counterparty,
                institution=move.counterparty_institution,
                payee_account=move.account,
                payee_institution=move.institution,
            ),
            triggering_event_ids=[r for r in (call, move.event_ref) if r],
            amount_at_risk=f"{move.amount:.2f}",
            incident_id=incident_id_for(move.institution, move.account),
            payments=[
                AlertPayment(
                    event_ref=move.event_ref,
                    amount=Decimal(f"{move.amount:.2f}"),
                    occurred_at=move.occurred_at,
                    payee_account=move.account,
                    payee_institution=move.institution,
                )
            ],
            event_time=move.occurred_at,
            created_at=datetime.now(UTC),
            scorer_version=f"{self.version}+{self.model.live.version}",
            # A cold state's features describe a scorer that has just started, not the payment: no label.
            features=None if p.cold else p.row,
            feature_set=None if p.cold else FEATURE_SET_HASH,
        )

    def _outflow(self, accounts: Book[AccountState], move: Movement) -> Alert | None:
        key = f"{move.institution}/{move.account}"
        state = account(accounts, key)
        at = move.occurred_at.timestamp()
        accounts.touched(key, at)
        payee = f"{move.counterparty_institution}/{move.counterparty}"
        if not state.record_out(at, payee, move.amount, move.event_ref):
            return None
        if move.holder_phone:
            state.holder_phone = move.holder_phone
        if state.alerted_at is not None and at - state.alerted_at < COOLDOWN_S:
            return None
        finding = self.rule.score(state.mule_features(at))
        if finding is None or finding.score < self.s.alert_threshold:
            return None
        state.alerted_at = at
        metrics.ALERTS.labels("mule_fan_in").inc()
        ins = state.ins_1h
        refs = [r for r, t in state.refs.items() if at - 3600 <= t <= at and r != move.event_ref]
        return Alert(
            alert_id=alert_id_for(
                "mule_fan_in", keys.account_key(move.institution, move.account).decode(), move.event_ref
            ),
            typology="mule_fan_in",
            score=finding.score,
            reasons=finding.reasons,
            recommended_actions=actions_for(finding.score, self.s, victim_known=False),
            subject=Subject(account=move.account, institution=move.institution),
            triggering_event_ids=list(dict.fromkeys([*refs, move.event_ref])),
            amount_at_risk=f"{ins.stats(at)[1]:.2f}",
            incident_id=incident_id_for(move.institution, move.account),
            event_time=move.occurred_at,
            created_at=datetime.now(UTC),
            scorer_version=self.version,
        )

    def _alert_record(self, alert: Alert) -> Record:
        subject = alert.subject
        key = (
            keys.person_key(subject.phone)
            if subject.phone
            else keys.account_key(subject.institution or "", subject.account or "")
        )
        return Record(
            topic=topics.name(topics.ALERTS, self.prefix), key=key, value=alert.model_dump_json().encode()
        )

    def prune(self) -> None:
        """Forget accounts silent longer than the horizon, in event time against the partition's newest
        (found at the front of the book: the cost is what is forgotten, so it runs every batch)."""
        now = self.clock()
        for accounts in self.accounts.values():
            accounts.forget_silent(self.s.account_horizon_hours * 3600, now=now)
        metrics.TRACKED.labels("account").set(sum(len(accounts) for accounts in self.accounts.values()))


def _observe_alerted(timestamps_ms: list[int]) -> None:
    now_ms = time.time() * 1000
    for ts in timestamps_ms:
        metrics.SCORING_SECONDS.observe(max(now_ms - ts, 0) / 1000)
