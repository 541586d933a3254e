"""Stage one of the scorer: events keyed by person → per-person state → the person-side features of each
money-out, forwarded with the money movement re-keyed by account to stage two, which joins them with the
payee account's features and scores them (the payee lives in another partition of the person topics)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from models.features.codec import decode, encode, layout
from models.features.engine import UNKNOWN_INSTITUTION, PersonOutcome, WalletFlow, apply_person_event
from models.features.person import PersonState
from models.features.vector import FEATURE_SET_HASH
from services.kit.settings import CommonSettings
from services.scorer import episodes, history, metrics
from services.scorer.books import Book
from services.scorer.dead_letter import untimely
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import Checkpoints, SnapshotStore
from streams import groups, keys, topics
from streams.consumer import Batch, Landing
from streams.dead_letter import dead_letter_record, describe, hand_over
from streams.producer import Producer, Record
from streams.schemas import events as ev
from streams.schemas.alerts import event_ref, received_alert_adapter
from streams.schemas.event_time import EventTimeBounds
from streams.schemas.movements import Movement, OpenEpisode

DEDUP_S = 3600.0


GROUP = groups.SCORER_EVENTS  # its consumer group (prefixed), which signs its dead letters


class PersonStage:
    """Holds the state of the person partitions assigned to this instance."""

    def __init__(
        self,
        settings: ScorerSettings,
        producer: Producer,
        *,
        prefix: str,
        snapshots: SnapshotStore | None = None,
        bounds: EventTimeBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s = settings
        # Events produced straight to Kafka meet the ingest API's bounds here (else they are dead-lettered):
        # one event dated 9999 would otherwise be the partition's clock and every person would be forgotten.
        self.bounds = bounds or CommonSettings().event_time_bounds()
        self.clock = clock
        self.producer = producer
        self.prefix = prefix
        self.group = f"{prefix}{GROUP}"
        self.people: dict[int, Book[PersonState]] = {}
        self.seen: dict[int, OrderedDict[str, float]] = {}  # event ref → when handled (monotonic)
        self.watching_since: dict[int, float] = {}  # per partition: since when its state holds history
        self.checkpoints = Checkpoints(
            snapshots,
            stage="persons",
            layout=layout(PersonState),
            interval_s=settings.snapshot_interval_seconds,
            export=self._export,
            restore=self._restore,
            drop=self._drop,
            revoke_tail=settings.snapshot_revoke_tail_records,
            revoke_budget_s=settings.snapshot_revoke_budget_seconds,
        )

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.people.setdefault(tp.partition, Book())
            self.seen.setdefault(tp.partition, OrderedDict())

    async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
        # Co-partitioned topics move together (range assignor), so partition n's state goes with them.
        # (Checkpoints drops the state once it is not given back.)
        await self.checkpoints.release(partitions, leaving=leaving)

    def _drop(self, partition: int) -> None:
        self.people.pop(partition, None)
        self.seen.pop(partition, None)
        self.watching_since.pop(partition, None)

    def _export(self, partition: int) -> dict[str, object]:
        now = time.monotonic()
        people = self.people.get(partition, Book())
        seen = self.seen.get(partition, OrderedDict())
        # Dedup times are monotonic, which means nothing in another process: kept as ages.
        return {
            "people": {phone: encode(p) for phone, p in people.items()},
            "seen": [[ref, round(now - at, 1)] for ref, at in seen.items()],
        }

    def _restore(self, partition: int, state: dict[str, Any]) -> None:
        now = time.monotonic()
        self.people[partition] = Book.restored(
            {phone: decode(PersonState, p) for phone, p in state["people"].items()}
        )
        self.seen[partition] = OrderedDict((str(ref), now - float(age)) for ref, age in state["seen"])

    async def handle(self, batch: Batch) -> Landing:
        out = self.process(batch)
        # Not waited for: the next batch is scored while Kafka acknowledges (the runner waits before it
        # commits).
        landing = await hand_over(self.producer, out, metrics.DEAD_LETTERS) if out else None
        self.prune(time.monotonic())
        return landing

    def process(self, batch: Batch) -> list[Record]:
        """The batch's records applied to state; the records to produce (movements, moved events, dead
        letters). The person's own alerts come on the alerts topic (co-partitioned: keyed by person)."""
        out: list[Record] = []
        alerts = topics.name(topics.ALERTS, self.prefix)
        # A person's calls and payments arrive on different topics; within a batch they are applied in
        # the order Kafka received them, not topic by topic, so a call is seen before the payment it led to.
        ordered = sorted(
            ((tp, record) for tp, records in batch.items() for record in records),
            key=lambda item: (item[1].timestamp, item[0].topic, item[1].offset),
        )
        # Whether each was handled by the previous owner, asked in offset order: in time order a record
        # past the replay (one moved here keeps its first timestamp) may come before replayed ones, and its
        # question ends the replay. Alerts' replay ends this way too, or the partition would never be
        # saved again.
        replayed = {
            (tp, record.offset): self.checkpoints.replaying(tp, record.offset)
            for tp, records in batch.items()
            for record in records
        }
        for tp, record in ordered:
            if tp.topic == alerts:  # an alert only updates state, replayed or not
                self._alert(tp.partition, record)
            elif replayed[tp, record.offset]:
                # Handled by this partition's previous owner, which forwarded its movements: the
                # state is rebuilt, the output dropped.
                self._one(tp.partition, record, [])
            else:
                self._one(tp.partition, record, out)
        metrics.BATCH_EVENTS.observe(len(ordered))
        return out

    def _alert(self, partition: int, record: ConsumerRecord) -> None:
        """A victim's alert (ours, from stage two): their later payments in its episode update it."""
        try:
            alert = received_alert_adapter.validate_json(record.value or b"")
        except ValidationError:
            return  # not ours to judge: the alerts' consumers count invalid ones
        phone = alert.subject.phone
        if phone is None or alert.typology == "mule_fan_in":
            return
        person = self.people.setdefault(partition, Book()).get(phone)
        if person is not None:  # a person forgotten since has no episode to continue
            episodes.remember(person, alert)

    def _one(self, partition: int, record: ConsumerRecord, out: list[Record]) -> None:
        try:
            envelope = ev.envelope_adapter.validate_json(record.value or b"")
        except ValidationError as exc:
            out.append(
                dead_letter_record(
                    record, reason="invalid", detail=describe(exc), prefix=self.prefix, consumer=self.group
                )
            )
            return
        event = envelope.event
        if record.key != keys.person_key(event.person_phone):
            out.append(
                dead_letter_record(
                    record,
                    reason="wrong_key",
                    detail="key must be streams.keys.person_key",
                    prefix=self.prefix,
                    consumer=self.group,
                )
            )
            return
        late = untimely(
            record,
            event.occurred_at,
            bounds=self.bounds,
            now=self.clock(),
            prefix=self.prefix,
            consumer=self.group,
        )
        if late is not None:
            out.append(late)
            return
        right = keys.partition_of(record.key, topics.EVENT_PARTITIONS)
        if record.partition != right:
            # A producer with another partitioner: here the person's other events never meet this one.
            out.append(_moved(record, right))
            return
        ref = event_ref(envelope.institution, event.event_id)
        seen = self.seen.setdefault(partition, OrderedDict())
        if ref in seen:
            metrics.DUPLICATES.inc()
            return
        seen[ref] = time.monotonic()
        if len(seen) > self.s.dedup_max_refs:
            seen.popitem(last=False)  # bounded memory under any load; the oldest ids go first
        metrics.EVENTS.labels(event.type).inc()
        people = self.people.get(partition)
        if people is None:  # not assigned through `assigned` (a test feeding records by hand)
            people = self.people[partition] = Book()
        horizon = self.s.state_horizon_hours * 3600
        since = self.watching_since[partition] = history.watching_since(
            self.watching_since.get(partition),
            (p.first_seen for p in people.values()),
            event.occurred_at.timestamp(),
        )
        for outcome in apply_person_event(people, envelope.institution, event, ref, horizon):
            if isinstance(outcome, WalletFlow):
                out.append(self._record(_wallet_movement(outcome), record.timestamp))
            else:
                person = people[event.person_phone]
                episode = episodes.open_episode(person, outcome.money)
                opens = episodes.opening(person, event.person_phone, outcome.money, rescore=outcome.rescore)
                watched = max(0.0, outcome.money.at - since)
                moves = self._movements(outcome, episode, opens, watched)
                out.extend(self._record(m, record.timestamp) for m in moves)
        people.touched(event.person_phone, event.occurred_at.timestamp())

    def _record(self, move: Movement, ts: int) -> Record:
        return Record(
            topics.name(topics.TRANSFERS_BY_ACCOUNT, self.prefix),
            orjson.dumps(move.model_dump(mode="json", exclude_none=True)),
            keys.account_key(move.institution, move.account),
            timestamp_ms=ts,
        )

    def _movements(
        self, o: PersonOutcome, episode: OpenEpisode | None, opens: uuid.UUID | None, watched_s: float
    ) -> list[Movement]:
        """The money-out seen from the payee (with the payer's features, to be scored there) and, the
        first time only, from the payer's account."""
        m = o.money
        common = {
            "amount": m.amount,
            "occurred_at": datetime.fromtimestamp(m.at, UTC),
            "event_ref": m.ref,
        }
        inflow = Movement(
            direction="in",
            account=m.payee_account,
            institution=m.payee_institution,
            counterparty=m.account,
            counterparty_institution=m.institution,
            payer_phone=o.person_phone,
            person_features=o.features,
            feature_set=FEATURE_SET_HASH,
            # Whatever the features think of the caller: a scam number that texted or called before is
            # a "known" contact, and the blocklist check in stage two must still see it.
            call_ref=o.call.ref if o.call is not None else None,
            call_caller=o.call.caller if o.call is not None else None,
            rescore=o.rescore,
            to_own_account=o.to_own_account,
            episode=episode,
            opens=opens,
            person_history_s=round(watched_s, 1),
            **common,
        )
        moves = [inflow]
        if not o.rescore:
            moves.append(
                Movement(
                    direction="out",
                    account=m.account,
                    institution=m.institution,
                    counterparty=m.payee_account,
                    counterparty_institution=m.payee_institution,
                    holder_phone=o.person_phone,
                    **common,
                )
            )
        return moves

    def prune(self, now: float) -> None:
        """Forget people silent for longer than the horizon (in event time, against the partition's
        watermark, so a replay of old traffic forgets like live traffic did) and dedup ids older than an hour.
        Both are found at the front of their books: the cost is what is forgotten, so it runs every batch."""
        horizon = self.s.state_horizon_hours * 3600
        wall = self.clock()
        for people in self.people.values():
            people.forget_silent(horizon, now=wall)
        for seen in self.seen.values():
            while seen and next(iter(seen.values())) < now - DEDUP_S:
                seen.popitem(last=False)
        metrics.TRACKED.labels("person").set(sum(len(people) for people in self.people.values()))


def _moved(record: ConsumerRecord, partition: int) -> Record:
    """The record, untouched, to the partition its key hashes to, with where it was found."""
    metrics.REPARTITIONED.labels(record.topic).inc()
    return Record(
        record.topic,
        record.value or b"",
        record.key,
        headers=[*record.headers, ("stopline.moved-from", str(record.partition).encode())],
        timestamp_ms=record.timestamp,
        partition=partition,
    )


def _wallet_movement(flow: WalletFlow) -> Movement:
    """A top-up (into the wallet) or a withdrawal (out of it), seen from the wallet's side."""
    return Movement(
        direction=flow.direction,
        account=flow.account,
        institution=flow.institution,
        counterparty=flow.counterparty,
        counterparty_institution=UNKNOWN_INSTITUTION,
        amount=flow.amount,
        occurred_at=datetime.fromtimestamp(flow.at, UTC),
        event_ref=flow.ref,
        holder_phone=flow.person_phone,
    )
