"""Stage two of the scorer: money movements keyed by account → per-account state. Each inflow is joined
with the payer's features from stage one and scored by the model, all inflows of a consumer batch in one
call, then hard rules (reported or blocked numbers, known mule accounts) and thresholds → actions; one
alert per episode (`episodes`), its reasons from the model's attribution, its scam typology from the
model's typology classifier. Outflows (bank transfers and wallet withdrawals) feed the mule fan-in rule
on the paying account."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiokafka import TopicPartition
from pydantic import ValidationError

from models.artifact import Artifact
from models.features.account import AccountState, Reporters
from models.features.codec import decode, encode, layout
from models.features.engine import account
from models.features.person import AlertSeen
from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from services.kit.settings import CommonSettings
from services.scorer import episodes, explain, history, metrics
from services.scorer.books import Book
from services.scorer.dead_letter import untimely
from services.scorer.hooks import FraudKnowledge, NothingKnown
from services.scorer.model_slot import ModelSlot
from services.scorer.rules import MuleFanIn, Rule, actions_for
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import Checkpoints, SnapshotStore
from streams import groups, keys, topics
from streams.consumer import Batch, Landing
from streams.dead_letter import dead_letter_record, describe, hand_over
from streams.producer import Producer, Record
from streams.schemas.alerts import MAX_TRIGGERS, Alert, Subject, Typology, alert_id_for, incident_id_for
from streams.schemas.event_time import EventTimeBounds
from streams.schemas.movements import Movement, movement_adapter

COOLDOWN_S = 6 * 3600  # one mule alert per account per six hours; the case follows the rest
MULE_TRIGGERS_MAX = MAX_TRIGGERS - 1  # event refs a mule alert names (200)
F = {name: i for i, name in enumerate(FEATURE_NAMES)}
FURTHER_PAYMENT = "a further payment to a payee of this alert's episode"


# A payment judged by the hard rules: its score with them, their reasons, the features those state, and
# whether one of them is about the call.
Judged = tuple[float, list[str], explain.Up, bool]


@dataclass
class Pending:
    """An inflow waiting for the batch's one model call."""

    move: Movement
    state: AccountState
    row: list[float]
    source_ts: int
    cold: bool = False  # the partition's state covers too little time for the 24 h windows to mean much
    replay: bool = False  # read again after a restore: state is updated, no alert is sent


GROUP = groups.SCORER_ACCOUNTS  # its consumer group (prefixed), which signs its dead letters


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
        self.group = f"{prefix}{GROUP}"
        # Movements meet the events' time bounds again (dead letter otherwise): one dated 9999 would be an
        # account never forgotten, and windows counted from a date no other movement reaches.
        self.bounds = bounds or CommonSettings().event_time_bounds()
        self.clock = clock
        self.version = version
        self.model = model
        self.rule: Rule = rule or MuleFanIn(settings)
        self.knowledge: FraudKnowledge = knowledge or NothingKnown()
        self.accounts: dict[int, Book[AccountState]] = {}
        # Institutions seen reporting outflows (any partition's). Every partition's snapshot holds the
        # whole map, so a restarted instance knows at once which payees' outflows can be seen: a bank that
        # reports a few outflows a day would otherwise read as silent for hours.
        self.reporters = Reporters()
        self.watching_since: dict[int, float] = {}  # per partition: since when its state holds history
        self.checkpoints = Checkpoints(
            snapshots,
            stage="accounts",
            layout=layout(AccountState, Reporters),
            interval_s=settings.snapshot_interval_seconds,
            export=self._export,
            restore=self._restore,
            drop=self._drop,
            revoke_tail=settings.snapshot_revoke_tail_records,
            revoke_budget_s=settings.snapshot_revoke_budget_seconds,
        )

    def _export(self, partition: int) -> dict[str, object]:
        accounts = self.accounts.get(partition, Book())
        return {
            "accounts": {k: encode(a) for k, a in accounts.items()},
            "reporters": dict(self.reporters.last),
        }

    def _restore(self, partition: int, state: dict[str, Any]) -> None:
        self.accounts[partition] = Book.restored(
            {k: decode(AccountState, a) for k, a in state["accounts"].items()}
        )
        for institution, at in state["reporters"].items():
            self.reporters.saw(str(institution), float(at))

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.accounts.setdefault(tp.partition, Book())

    async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
        # (Checkpoints drops the state once it is not given back.)
        await self.checkpoints.release(partitions, leaving=leaving)

    def _drop(self, partition: int) -> None:
        self.accounts.pop(partition, None)
        self.watching_since.pop(partition, None)

    async def handle(self, batch: Batch) -> Landing:
        self.model.maybe_swap()  # between batches: a promotion never splits one
        out, alerts = self.process(batch)
        # Acknowledged while the next is scored.
        landing = await hand_over(self.producer, out, metrics.DEAD_LETTERS) if out else None
        if landing is not None and alerts:
            landing.add_done_callback(lambda _: _observe_alerted([ts for _, ts in alerts]))
        self.prune()
        return landing

    def process(self, batch: Batch) -> tuple[list[Record], list[tuple[Alert, int]]]:
        """The batch's movements applied to state and scored; the records to produce, and the alerts
        among them with the source record's time."""
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
                            dead_letter_record(
                                record,
                                reason="invalid",
                                detail=describe(exc),
                                prefix=self.prefix,
                                consumer=self.group,
                            )
                        )
                    continue
                late = untimely(
                    record,
                    move.occurred_at,
                    bounds=self.bounds,
                    now=self.clock(),
                    prefix=self.prefix,
                    consumer=self.group,
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
        return out, alerts

    def _inflow(
        self, partition: int, accounts: Book[AccountState], move: Movement, ts: int
    ) -> Pending | None:
        key = f"{move.institution}/{move.account}"
        state = account(accounts, key)
        at = move.occurred_at.timestamp()
        accounts.touched(key, at)
        since = self.watching_since[partition] = history.watching_since(
            self.watching_since.get(partition), (a.first_seen for a in accounts.values()), at
        )
        payer = f"{move.counterparty_institution}/{move.counterparty}"
        if not move.rescore and not state.record_in(at, payer, move.amount, move.event_ref):
            return None  # a replayed movement: counted and scored already
        if move.person_features is None or move.payer_phone is None:
            metrics.SKIPPED.labels("no_features").inc()
            return None
        if move.to_own_account:
            metrics.SKIPPED.labels("own_account").inc()
            return None
        if move.feature_set != FEATURE_SET_HASH:
            # Stage one runs other feature code (a rolling upgrade): its numbers would be misread.
            metrics.SKIPPED.labels("feature_set").inc()
            return None
        # Cold while either stage's state is younger than the warm-up: the payer's side (stage one's
        # callers, payees, history) as much as the payee's. An older stage one does not say: warm.
        warmup = self.s.model_warmup_hours * 3600
        young_payer = move.person_history_s is not None and move.person_history_s < warmup
        cold = at - since < warmup or young_payer
        seen = self.reporters.reports(move.institution, at)
        return Pending(move, state, move.person_features + state.payee_features(at, payer, seen), ts, cold)

    def _score(self, pending: list[Pending]) -> list[tuple[Alert, int]]:
        if not pending:
            return []
        rows = np.array([p.row for p in pending], dtype=np.float64)
        scores = self.model.score(rows)  # the micro-batch: one call for every inflow of the batch
        metrics.SCORED.inc(len(pending))
        threshold = self.model.threshold
        live = self.model.live
        attributed: dict[int, np.ndarray] = {}  # row → its features' contributions (a tree walk each)
        chosen: list[tuple[int, float, list[str], episodes.Raised, bool, bool]] = []
        stated: list[explain.Up] = []
        for i, p in enumerate(pending):
            score, hard, facts, about_call = self._hard_rules(p, float(scores[i]))
            if p.cold and not hard and score >= threshold:
                # A state younger than the windows (fresh start, or replayed history) sees every account
                # as new: the model would alert on ordinary payees. Only hard rules alert until it fills.
                metrics.HELD_BACK.inc()
            payer = p.move.payer_phone
            assert payer is not None
            alertable = score >= threshold or bool(hard)
            base = p.state.victims.get(payer)
            # The alert tells the call by a hard rule about the caller, or among the model's reasons; only a
            # row that may open or revise an alert is attributed to know (a stranger ringing in the hour
            # before a payment alerted for a new device's login makes no "call then transfer").
            may_alert = (
                bool(hard) or (alertable and not p.cold) or base is not None or p.move.episode is not None
            )
            told = about_call or (
                may_alert
                and self._suspicious_call(p)
                and self._model_tells_call(i, rows, facts, attributed, live)
            )
            raised = episodes.decide(
                p.move,
                base,
                episodes.Scored(score, hard, alertable, self._kind(told)),
                may_open=not p.cold or bool(hard),
            )
            if raised is None:
                continue
            # Also when replayed (state rebuilt after a restore): the payment is not alerted on again.
            p.state.victims[payer] = episodes.seen(raised, p.move.occurred_at.timestamp())
            if not p.replay:
                chosen.append((i, score, hard, raised, alertable, told))
                stated.append(facts)
        if not chosen:
            return []
        index = [i for i, *_ in chosen]
        missing = [i for i in index if i not in attributed]
        if missing:
            attributed.update(zip(missing, live.contributions(rows[missing]), strict=True))
        said = explain.reasons(rows[index], np.array([attributed[i] for i in index]), stated)
        kinds = live.typology(rows[index])
        out = []
        for (i, score, hard, raised, alertable, told), words, kind in zip(chosen, said, kinds, strict=True):
            if not alertable:
                # Sent because the episode's payee was paid again: this payment grows the amount at risk,
                # it does not explain the alert (coordination keeps the reasons of the strongest revision).
                reasons = [FURTHER_PAYMENT, *words]
            else:
                reasons = hard + words or [f"the model finds this payment likely a scam (score {score:.2f})"]
            alert = self._victim_alert(pending[i], score, reasons, raised, kind, call_told=told)
            out.append((alert, pending[i].source_ts))
        return out

    @staticmethod
    def _kind(call_told: bool) -> Typology:
        """call_then_transfer if the alert tells a call before the payment; otherwise the payment is
        suspicious on its own (the mule account's alert is `_outflow`'s)."""
        return "call_then_transfer" if call_told else "suspicious_payment"

    @staticmethod
    def _model_tells_call(
        i: int, rows: np.ndarray, facts: explain.Up, attributed: dict[int, np.ndarray], live: Artifact
    ) -> bool:
        if i not in attributed:
            attributed[i] = live.contributions(rows[i : i + 1])[0]
        return explain.tells_the_call(rows[i : i + 1], attributed[i][None, :], [facts])[0]

    def _suspicious_call(self, p: Pending) -> bool:
        f = p.row
        return bool(f[F["caller_unknown"]] or f[F["caller_reported"]] or self._blocked_caller(p.move))

    def _hard_rules(self, p: Pending, score: float) -> Judged:
        """Facts that alert whatever the model says, with their reason first; the features those reasons
        state, which the model's reasons do not say again; and whether a fact is the call."""
        move, f = p.move, p.row
        said = []
        stated: explain.Up = frozenset()
        if self._blocked_caller(move):
            said.append("the caller's number is on the fraud blocklist")
        elif f[F["caller_reported"]] and f[F["payee_new"]] and move.amount >= self.s.large_amount:
            said.append("the caller's number has been reported for fraud by its operator")
            stated = frozenset({"caller_reported"})  # the model's call sentence keeps the call's length
        elif not p.cold and self._talked_into_it(p):
            # The scorer's own example: long on the phone with a stranger, then a large sum to a new payee
            # within minutes. The model leans on the payee's side, which a silent bank leaves empty.
            # The facts that fire the rule; the caller's kind of line is none of them.
            said.append(explain.call_reason(explain.named(p.row), explain.EVERY - {"caller_fixed_line"}))
            stated = frozenset(explain.CALL)
        about_call = bool(said)
        if not said and not p.cold and self._taken_over(p):
            # No call to tell: telecom's word that the number moved to another SIM, or a link SMS then a
            # login from a new device, then a large sum to a payee never paid. For a person Stopline has not
            # seen pay, the model reads a large first sum as a car or a deposit, whatever came before it.
            reasons, stated = explain.takeover_reasons(explain.named(p.row))
            said += reasons
        if self.knowledge.is_known_mule(move.institution, move.account):
            said.append("the payee account is a known mule account")
        return (max(score, self.s.hard_rule_score) if said else score), said, stated, about_call

    def _talked_into_it(self, p: Pending) -> bool:
        """A long call from an unknown number, then soon after a large payment to a payee never paid (the
        state is warm: young state sees every caller and payee as new)."""
        f = p.row
        return bool(
            f[F["caller_unknown"]]
            and f[F["payee_new"]]
            and f[F["call_duration_min"]] >= self.s.long_call_minutes
            and f[F["minutes_call_end_to_transfer"]] <= self.s.call_gap_minutes
            and p.move.amount >= self.s.large_amount
        )

    def _taken_over(self, p: Pending) -> bool:
        """A SIM change in the day before, or a link SMS then a new device's login in the two hours before,
        then a large payment to a payee never paid (the sequence features: `models.features.person`)."""
        f = p.row
        return bool(
            (f[F["seq_sim_change_payment"]] or f[F["seq_link_new_device_payment"]])
            and f[F["payee_new"]]
            and p.move.amount >= self.s.large_amount
        )

    def _blocked_caller(self, move: Movement) -> bool:
        """Whether the call before the payment came from a number on the blocklist."""
        return bool(move.call_caller) and self.knowledge.is_blocked_number(move.call_caller or "")

    def _victim_alert(
        self,
        p: Pending,
        score: float,
        reasons: list[str],
        raised: episodes.Raised,
        kind: tuple[str, float],
        *,
        call_told: bool,
    ) -> Alert:
        move = p.move
        assert move.payer_phone is not None
        typology: Typology = (
            "call_then_transfer" if raised.kind == "call_then_transfer" else "suspicious_payment"
        )
        # The evidence names this payment's call where the alert tells it.
        call = move.call_ref if call_told else None
        metrics.ALERTS.labels(f"model_{typology}" if raised.revision == 1 else "revision").inc()
        scam, scam_score = kind
        return Alert(
            alert_id=raised.alert_id,
            revision=raised.revision,
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
            triggering_event_ids=[r for r in (call, *(pay.event_ref for pay in raised.payments)) if r],
            amount_at_risk=f"{raised.amount:.2f}",
            incident_id=raised.incident_id,
            payments=raised.payments,
            scam_typology=scam or None,  # the classifier's classes are ScamTypology
            scam_typology_score=round(scam_score, 4) if scam else None,
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
        self.reporters.saw(move.institution, at)
        if move.holder_phone:
            state.holder_phone = move.holder_phone
        finding = self.rule.score(state.mule_features(at))
        if finding is None or finding.score < self.s.alert_threshold:
            return None
        received = state.ins_1h.stats(at)[1]
        open_alert = state.mule_alert
        if open_alert is not None and at - open_alert.last_at < COOLDOWN_S:
            # The same incident still collecting: a revision once what it took in has grown by a fifth.
            if received < 1.2 * open_alert.amount:
                return None
            alert_id, revision = uuid.UUID(open_alert.alert_id), open_alert.revision + 1
        else:
            alert_id = alert_id_for(
                "mule_fan_in", keys.account_key(move.institution, move.account).decode(), move.event_ref
            )
            revision = 1
        incident = incident_id_for(move.institution, move.account)
        state.mule_alert = AlertSeen(
            str(alert_id), revision, str(incident), at, "mule_fan_in", amount=received
        )
        metrics.ALERTS.labels("mule_fan_in" if revision == 1 else "revision").inc()
        # The newest of the hour's (a merchant sweeping its takings may have thousands): the alert stays
        # far under Kafka's record size, which would otherwise refuse it again at every restart.
        hour = sorted((t, r) for r, t in state.refs.items() if at - 3600 <= t <= at and r != move.event_ref)
        refs = [r for _, r in hour[-(MULE_TRIGGERS_MAX - 1) :]]
        return Alert(
            alert_id=alert_id,
            revision=revision,
            typology="mule_fan_in",
            score=finding.score,
            reasons=finding.reasons,
            recommended_actions=actions_for(finding.score, self.s, victim_known=False),
            subject=Subject(account=move.account, institution=move.institution),
            triggering_event_ids=list(dict.fromkeys([*refs, move.event_ref])),
            amount_at_risk=f"{received:.2f}",
            incident_id=incident,
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
