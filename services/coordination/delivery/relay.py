"""The outbox relay: publishes queued messages to Kafka and posts them to webhooks, then marks them sent.

Kafka: rows are leased in a short transaction (FOR UPDATE SKIP LOCKED, their attempt counted), noted as
the relay's producer's, published outside it in one Kafka transaction, and marked sent once it is committed;
while Kafka has not answered (a broker restarting), the lease is renewed and nobody publishes the rows
again. A row whose lease lapsed (its relay died, or could not renew it while PostgreSQL was down) or
whose publication failed had an attempt that may have landed or may still land: the relay taking it
over first fences that attempt's producer (it starts one with the same transactional id: the other's open
transaction is aborted, or completed if it had asked to commit, and nothing of it can land afterwards),
then reads the topic back, read committed (streams.settle), and publishes only a message not on it. A
row known not to be on Kafka is published at once. So a message reaches its topic, as a consumer reading
committed sees it, once; the message id is still the receiver's de-duplication key (the instruction id
is also the Kafka key), and a consumer reading uncommitted records may see a fenced attempt's. A
producer that cannot be fenced now, or a topic that cannot be read back, holds up only its own rows: they
keep their lease and are looked at again when it lapses. So does an institution's topic that cannot be
made (Kafka refuses it, or is away): its rows are tried again seconds later, the rest are published. A
relay writes to a row only while its claim holds (the attempts it counted): one whose lease was taken
over can neither publish the row nor note anything on it.

Webhooks: rows are leased in a short transaction, posted outside it with a timeout, then marked sent
or rescheduled with exponential backoff; after `webhook_max_attempts` the message is dead, and an
instruction that reached its institution on no channel is failed and escalated.

The relay wakes on PostgreSQL NOTIFY (the outbox's insert trigger's, at commit) and polls anyway. Its
LISTEN connection is made again whenever it is lost (the database restarted); while the database is away,
the relay starts and runs on polling alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import ConsumerRecord
from cryptography.exceptions import InvalidTag
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.delivery import repository, signing
from services.coordination.delivery.models import OutboxMessage
from services.coordination.delivery.repository import NOT_ON_KAFKA, claim_of
from services.coordination.instructions import service as instructions
from services.coordination.settings import CoordinationSettings
from services.institutions.delivery import secrets_sealer, signing_secrets
from services.institutions.models import Institution
from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.errors import Unavailable
from services.kit.logging import log_fields
from services.kit.settings import CommonSettings
from streams import acls, admin, topics
from streams.connection import connection
from streams.producer import MAX_REQUEST_BYTES, START_WITHIN_S, Producer, Record, abandon, fence
from streams.settle import NoSuchTopic, landed

log = logging.getLogger(__name__)
KAFKA_BATCH = 500
WEBHOOK_BATCH = 50
LISTEN_RETRY_S = 2.0  # between two attempts at the LISTEN connection, and how often it is looked at
RENEW_RETRY_S = 1.0  # between two attempts at renewing a lease while Kafka has not answered
TOPIC_RETRY_S = 5.0  # before messages whose topic could not be made are tried again
TOPIC_TIMEOUT_S = 10.0  # for making a batch's topics, all calls together (within the rows' lease)


class Relay:
    def __init__(
        self,
        common: CommonSettings,
        settings: CoordinationSettings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        after_publish: Callable[[list[OutboxMessage]], Awaitable[None]] | None = None,
    ) -> None:
        """`after_publish` runs between the broker's acknowledgement and the mark-sent commit (tests
        use it to kill the relay at the worst moment)."""
        self.common = common
        self.settings = settings
        self.sessions = sessions
        self.sealer = secrets_sealer(common)
        self.after_publish = after_publish
        self.kafka = connection(common, acls.COORDINATION)
        self.producer = self._new_producer()
        self.http: httpx.AsyncClient | None = None
        self._wake = {"kafka": asyncio.Event(), "webhook": asyncio.Event()}  # by delivery channel
        self._stopping = asyncio.Event()
        self._topics_ready: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start (or restart after `stop`): clients, the NOTIFY listener and the two loops. The database
        need not be up: the loops retry, and the listener connects when it can."""
        self._stopping.clear()
        await self.open_clients()
        self.tasks = [
            asyncio.create_task(self._loop(self.kafka_once, self._wake["kafka"]), name="relay-kafka"),
            asyncio.create_task(self._loop(self.webhooks_once, self._wake["webhook"]), name="relay-webhooks"),
            asyncio.create_task(self._listen(), name="relay-listen"),
        ]

    def _new_producer(self) -> Producer:
        # A transactional id of its own (each process anew): the rows this relay leases name it, and
        # whoever takes them over fences it by that id.
        instance = self.common.instance or "coordination"
        name = f"{acls.relay_transactions(self.common.topic_prefix)}{instance}-{uuid.uuid4().hex}"
        return Producer(
            self.kafka,
            client_id="stopline-relay",
            transactional_id=name,
            transaction_timeout_s=self.settings.relay_lease_s,
        )

    async def open_clients(self) -> None:
        await self.producer.start(within_s=START_WITHIN_S)
        self.http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        named = [self._wake[c] for c in payload.split(",") if c in self._wake]
        for wake in named or self._wake.values():  # a bare NOTIFY (older writers) wakes both
            wake.set()

    async def _listen(self) -> None:
        """Hold a LISTEN connection, made again whenever it is lost; each time it is (re)made, both loops
        look once (a message queued while nobody listened woke nobody)."""
        url = make_url(self.common.database_url).set(drivername="postgresql")
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=10)
            except Exception as exc:  # noqa: BLE001 - the database away: polled meanwhile, tried again
                log.info("relay not listening; trying again", extra=log_fields(error=type(exc).__name__))
                await self._pause(LISTEN_RETRY_S)
                continue
            try:
                await conn.add_listener(repository.CHANNEL, self._notified)
                for wake in self._wake.values():
                    wake.set()
                while not conn.is_closed() and not self._stopping.is_set():
                    await self._pause(LISTEN_RETRY_S)
            except Exception as exc:  # noqa: BLE001 - the connection lost while listening: made again
                log.info("relay listener lost", extra=log_fields(error=type(exc).__name__))
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            await self._pause(LISTEN_RETRY_S / 4)  # not a busy loop if it is lost as soon as it is made

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Finish the batch in hand (within the grace period), then close the clients."""
        self._stopping.set()
        for wake in self._wake.values():
            wake.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.http is not None:
            await self.http.aclose()
        await self.producer.stop()
        self.tasks = []

    async def _loop(self, once: Callable[[], Awaitable[int]], wake: asyncio.Event) -> None:
        while not self._stopping.is_set():
            try:
                busy = await once()
            except Exception as exc:  # noqa: BLE001 - logged and counted; the relay itself must go on
                # A failed batch stays in the outbox and is retried.
                outages.log_failure(log, exc, "relay batch failed; retrying")
                metrics.RELAY_ERRORS.inc()
                busy = 0
                await asyncio.sleep(0.5)
            if busy:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.settings.relay_poll_s)

    @property
    def publisher(self) -> str:
        return self.producer.transactional_id or ""

    async def kafka_once(self) -> int:
        """Publish one batch of due Kafka messages; return how many were delivered."""
        lease = timedelta(seconds=self.settings.relay_lease_s)
        if self.producer.unsettled:  # a transaction of its own in doubt: fenced before anything else
            await self.producer.restart()
        async with unit_of_work(self.sessions) as session:
            rows = await repository.claim(session, channel="kafka", limit=KAFKA_BATCH, lease=lease)
        if not rows:
            return 0
        claims = {r.id: claim_of(r) for r in rows}
        # An earlier attempt may have landed, or may still: its producer is fenced, then the topic says.
        tried = [r for r in rows if r.attempts > 0]
        unfenced = await self._fence({r.publisher for r in tried if r.last_error != NOT_ON_KAFKA})
        unknown = {r.id for r in tried if r.publisher in unfenced}
        delivered, unread = await self._landed([r for r in tried if r.id not in unknown])
        unknown |= unread
        to_send = [r for r in rows if r.id not in delivered and r.id not in unknown]
        waiting = await self._hold_back_unmade(to_send, claims)
        to_send = [r for r in to_send if r.id not in waiting]
        if to_send:
            sent, in_doubt = await self._publish(to_send, [claims[r.id] for r in to_send])
            delivered, unknown = delivered | sent, unknown | in_doubt
        if self.after_publish is not None:
            await self.after_publish(rows)
        done = [r for r in rows if r.id in delivered]
        now = datetime.now(UTC)
        async with unit_of_work(self.sessions) as session:
            await mark_delivered(session, done, at=now)
            # The rest is known not to be on Kafka: published again at the next round (those not known
            # either way keep their lease: they are looked at again when it lapses; those held back wait).
            await repository.lease_kafka(
                session,
                [claims[r.id] for r in rows if r.id not in delivered | unknown | waiting],
                until=timedelta(),
                note=NOT_ON_KAFKA,
            )
        for row in done:
            metrics.DELIVERED.labels("kafka").inc()
            metrics.DELIVERY_SECONDS.labels("kafka").observe((now - row.created_at).total_seconds())
        return len(done)

    async def _give_up(self, rows: list[OutboxMessage], *, error: str) -> None:
        """The messages are dead; an instruction among them that reached its institution on no channel
        fails and is escalated."""
        now = datetime.now(UTC)
        async with unit_of_work(self.sessions) as session:
            # All the batch's instructions first, in the order `mark_delivered` takes them (`_dead` finds
            # each held): locked one by one in the batch's order, two relays with messages of the same
            # instructions in other orders would each hold one the other waits for (a deadlock: a failed
            # batch, tried again).
            await instructions.lock(session, [i for r in rows if (i := _failed_with(r)) is not None])
            for row in rows:
                await self._dead(session, row, at=now, error=error)
        for row in rows:
            metrics.DEAD.labels("kafka").inc()
            log.error("outbox message given up", extra=log_fields(message_id=row.message_id, error=error))

    async def _dead(self, session: AsyncSession, row: OutboxMessage, *, at: datetime, error: str) -> bool:
        """Give up the message this relay claimed (not if another relay has claimed it since); when no
        other channel's copy is still to be sent, its instruction fails, or a notice's failure is escalated.
        True if given up."""
        kind = row.payload.get("type")
        instruction = _failed_with(row)
        if instruction is not None:
            # Locked first: the instruction's two channels giving up at once would each see the other's
            # message still waiting, and neither fail it.
            await instructions.lock(session, [instruction])
        if not await repository.give_up(session, claim_of(row), at=at, error=error):
            return False
        if instruction is None or await repository.reached_or_waiting_elsewhere(session, row):
            return True
        prefix = self.common.topic_prefix
        if kind == "instruction":
            await instructions.delivery_failed(
                session, instruction_id=instruction, error=error, topic_prefix=prefix
            )
        else:
            notice = str(row.payload.get("notice"))
            await instructions.notice_failed(
                session, instruction_id=instruction, notice=notice, error=error, topic_prefix=prefix
            )
        return True

    async def _fence(self, publishers: set[str | None]) -> set[str | None]:
        """Fence the producers of earlier attempts; return those that could not be (their rows wait). This
        relay's own has no transaction open here (`kafka_once` settled it first)."""
        unfenced: set[str | None] = set()
        for publisher in publishers:
            if publisher is None or publisher == self.publisher:  # None: noted by no relay yet
                continue
            try:
                timeout = self.producer.timeout_s
                await fence(self.kafka, publisher, client_id="stopline-relay-fence", timeout_s=timeout)
                metrics.RELAY_FENCED.inc()
            except Exception as exc:  # noqa: BLE001 - logged and counted; its rows are looked at later
                metrics.RELAY_ERRORS.inc()
                log.warning(
                    "outbox producer not fenced; its messages wait",
                    extra=log_fields(error=type(exc).__name__),
                )
                unfenced.add(publisher)
        return unfenced

    async def _publish(
        self, rows: list[OutboxMessage], claims: list[repository.Claim]
    ) -> tuple[set[int], set[int]]:
        """Publish the rows this relay's claim still holds in one Kafka transaction and wait for its commit
        (the lease is renewed meanwhile); return the ids of the rows on Kafka, and of those not known to
        be or not to be (a row claimed by another relay since is neither). Unavailable when nothing was
        handed over. A message Kafka would never take is given up instead (its row is neither)."""
        records = {row.id: _record(row) for row in rows}  # serialized once, here
        refused = [r for r in rows if not Producer.fits(records[r.id])]
        if refused:  # in the batch's transaction they would hold up the rest
            await self._give_up(
                refused, error=f"larger than a Kafka request may be ({MAX_REQUEST_BYTES} bytes)"
            )
            claims = [c for c, r in zip(claims, rows, strict=True) if r not in refused]
            rows = [r for r in rows if r not in refused]
        async with unit_of_work(self.sessions) as session:
            held = await repository.publish_as(
                session,
                claims,
                publisher=self.publisher,
                lease=timedelta(seconds=self.settings.relay_lease_s),
            )
        rows = [r for r in rows if r.id in held]
        claims = [c for c in claims if c[0] in held]
        if not rows:
            return set(), set()
        try:
            delivery = await self.producer.transact([records[row.id] for row in rows])
        except Unavailable:
            async with unit_of_work(self.sessions) as session:
                await repository.lease_kafka(session, claims, until=timedelta(), note=NOT_ON_KAFKA)
            raise
        await self._renew_while_waiting(delivery, claims)
        if delivery.done() and delivery.exception() is None:
            return {r.id for r in rows}, set()
        abandon(delivery)  # given up on: its outcome is read from the topic
        metrics.RELAY_ERRORS.inc()
        # The commit's fate is not known: fence this relay's own transaction, then the topic says.
        try:
            await self.producer.restart()
        except Exception as exc:  # noqa: BLE001 - the rows keep their lease; the next look fences again
            log.warning("outbox producer not restarted", extra=log_fields(error=type(exc).__name__))
            return set(), {r.id for r in rows}
        return await self._landed(rows)

    async def _renew_while_waiting(
        self, delivery: asyncio.Future[Any], claims: list[repository.Claim]
    ) -> None:
        """Renew the rows' lease every third of one until Kafka answers, or until the transaction is past
        its timeout (the broker aborts it unless its commit had reached it: the caller fences it to know).
        Renewing keeps other relays from fencing a publication that is only slow, which would cost it a
        retry; a renewal the database refuses is tried again within a second."""
        lease = timedelta(seconds=self.settings.relay_lease_s)
        beat = self.settings.relay_lease_s / 3
        retry = min(RENEW_RETRY_S, beat)
        wait = beat
        give_up = time.monotonic() + 2 * self.settings.relay_lease_s
        while not delivery.done() and time.monotonic() < give_up:
            await asyncio.wait([delivery], timeout=wait)
            if delivery.done():
                return
            try:
                async with unit_of_work(self.sessions) as session:
                    await repository.lease_kafka(session, claims, until=lease)
                wait = beat
            except Exception as exc:  # noqa: BLE001 - the database away: the lease may lapse meanwhile
                log.info("outbox lease not renewed; trying again", extra=log_fields(error=type(exc).__name__))
                wait = retry

    async def _landed(self, rows: list[OutboxMessage]) -> tuple[set[int], set[int]]:
        """The rows whose message is on its topic already (read back since the message was queued), and
        the rows whose topic could not be read back (not known either way: not to be published). A topic
        that does not exist holds none of them."""
        found: set[int] = set()
        unknown: set[int] = set()
        by_topic: dict[str, list[OutboxMessage]] = {}
        for row in rows:
            by_topic.setdefault(row.topic or "", []).append(row)
        for topic, group in by_topic.items():
            try:
                ids = await landed(
                    self.kafka,
                    topic,
                    since=min(r.created_at for r in group),
                    identify=_message_id,
                    wanted=[r.message_id for r in group],
                    keys=[(r.key or "").encode() for r in group],
                )
            except NoSuchTopic:
                # Kafka says there is no such topic: nothing landed on it. An attempt that failed making
                # it (Kafka away) is tried again, and makes it, rather than waiting on a read-back that can
                # never answer. (Partitions merely not known, as in a fault, leave the rows unknown.)
                continue
            except Exception as exc:  # noqa: BLE001 - logged and counted; the other topics go on
                metrics.RELAY_ERRORS.inc()
                log.warning(
                    "outbox topic not read back; its messages wait",
                    extra=log_fields(topic=topic, messages=len(group), error=type(exc).__name__),
                )
                unknown |= {r.id for r in group}
                continue
            found |= {r.id for r in group if r.message_id in ids}
        return found, unknown

    async def _hold_back_unmade(
        self, rows: list[OutboxMessage], claims: dict[int, repository.Claim]
    ) -> set[int]:
        """Make the instruction topics the rows go to (an institution not provisioned gets its topic on its
        first instruction); return the ids of the rows whose topic could not be made. Those Kafka will
        refuse again (a name, a policy, a grant) are given up (an instruction fails and is escalated); the
        others are known not to be on Kafka and wait `TOPIC_RETRY_S`. The rest of the batch goes on."""
        unmade, lasting = await self._ensure_topics(rows)
        never = [r for r in rows if r.topic in lasting]
        if never:  # refused for good (a name, a policy, a grant): given up, the instruction escalated
            await self._give_up(never, error=f"its topic was refused: {unmade[never[0].topic or '']}")
        held = [r for r in rows if r.topic in unmade and r.topic not in lasting]
        if not held:
            return {r.id for r in never}
        async with unit_of_work(self.sessions) as session:
            wait = timedelta(seconds=TOPIC_RETRY_S)
            await repository.lease_kafka(session, [claims[r.id] for r in held], until=wait, note=NOT_ON_KAFKA)
        metrics.OUTBOX_HELD.inc(len(held))
        for topic, error in unmade.items():
            log.warning(
                "outbox topic not made; its messages wait",
                extra=log_fields(topic=topic, messages=sum(r.topic == topic for r in held), error=error),
            )
        return {r.id for r in held} | {r.id for r in never}

    async def _ensure_topics(self, rows: list[OutboxMessage]) -> tuple[dict[str, str], set[str]]:
        """Make the rows' instruction topics not made yet; return those that could not be, with why, and
        which of them Kafka will refuse again."""
        prefix = self.common.topic_prefix
        family = topics.name(topics.instructions_for(""), prefix)
        wanted = {r.topic for r in rows if r.topic and r.topic.startswith(family)} - self._topics_ready
        if not wanted:
            return {}, set()
        unmade: dict[str, str] = {}
        lasting: set[str] = set()
        try:
            async with (
                asyncio.timeout(TOPIC_TIMEOUT_S),
                admin.admin_client(self.kafka, TOPIC_TIMEOUT_S) as client,
            ):
                made = [topics.instructions_for(t[len(family) :]) for t in sorted(wanted)]
                await admin.create_missing(client, made, prefix, timeout_s=TOPIC_TIMEOUT_S)
        except admin.TopicRefused as exc:  # the others were made
            unmade, lasting = exc.refused, exc.lasting
        except Exception as exc:  # noqa: BLE001 - Kafka away: none known made; their rows wait
            unmade = dict.fromkeys(wanted, type(exc).__name__)
        self._topics_ready |= wanted - unmade.keys()
        return unmade, lasting

    async def webhooks_once(self) -> int:
        """Post one batch of due webhooks concurrently; return how many were attempted."""
        lease = timedelta(seconds=self.settings.webhook_timeout_s + 5)
        async with unit_of_work(self.sessions) as session:
            rows = await repository.claim(session, channel="webhook", limit=WEBHOOK_BATCH, lease=lease)
            targets: dict[Any, tuple[str | None, list[str]]] = {}
            now = datetime.now(UTC)
            for row in rows:
                inst = await repository.institution(session, row.institution_id or "")
                targets[row.id] = (inst.webhook_url, self._secrets(inst, now)) if inst else (None, [])
        if not rows:
            return 0
        await asyncio.gather(*(self._post(row, *targets[row.id]) for row in rows))
        return len(rows)

    def _secrets(self, institution: Institution, now: datetime) -> list[str]:
        try:
            return signing_secrets(institution, self.sealer, now=now)
        except InvalidTag:
            log.error(
                "webhook secret does not open: was STOPLINE_SECRETS_KEY changed? rotate the secret",
                extra=log_fields(institution=institution.id),
            )
            return []

    async def _post(self, row: OutboxMessage, url: str | None, secret: list[str]) -> None:
        error: str | None = None
        began = time.perf_counter()
        if not url or not secret:
            error = "institution has no usable webhook (URL, or a secret that opens) any more"
        else:
            body = orjson.dumps(row.payload)
            assert self.http is not None, "relay clients not open"
            timeout_s = self.settings.webhook_timeout_s
            try:
                # httpx's timeout bounds each step (connect, write, every read), not the call: a receiver
                # answering a byte at a time would outlast the lease, and another relay post it again.
                async with asyncio.timeout(timeout_s):
                    response = await self.http.post(
                        url, content=body, headers=signing.headers(secret, body, row.message_id)
                    )
                if not 200 <= response.status_code < 300:
                    error = f"HTTP {response.status_code}"
            except TimeoutError:
                error = f"Timeout: no answer within {timeout_s} s"
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                # (a URL stored before it was checked at configuration, a host IDNA refuses: an attempt
                # that failed, counted and in the end given up like any other, not a loop that never ends)
                error = f"{type(exc).__name__}: {exc}"[:500]
        metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - began)
        now = datetime.now(UTC)
        claim = claim_of(row)
        attempt = claim[1]  # this one's number: the row still shows the attempts before it
        last = attempt >= self.settings.webhook_max_attempts
        async with unit_of_work(self.sessions) as session:
            if error is None:  # delivered, whichever relay's claim holds the row now
                await mark_delivered(session, [row], at=now)
            elif last:
                # Not if another relay took the row meanwhile (this lease lapsed): its attempt decides.
                last = await self._dead(session, row, at=now, error=error)
            else:
                await repository.retry_later(session, claim, at=now + self._backoff(attempt), error=error)
        if error is None:
            metrics.DELIVERED.labels("webhook").inc()
            metrics.DELIVERY_SECONDS.labels("webhook").observe((now - row.created_at).total_seconds())
        else:
            metrics.WEBHOOK_FAILURES.inc()
            if last:
                metrics.DEAD.labels("webhook").inc()
            log.warning(
                "webhook failed",
                extra=log_fields(message_id=row.message_id, attempt=attempt, error=error),
            )

    def _backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: the first retry delay, doubled each time."""
        delay = min(
            self.settings.webhook_backoff_s * 2 ** (attempts - 1), self.settings.webhook_backoff_max_s
        )
        # Jitter spreads retries of many messages to one institution that just came back.
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))


async def mark_delivered(session: AsyncSession, rows: list[OutboxMessage], *, at: datetime) -> None:
    """The messages are sent, their instructions delivered. The instructions' rows first, then the
    messages' (the lock order, cases.repository), as a relay giving messages up and a withdrawal dropping
    them take them: the messages' first, this would hold one while it waits for its instruction, which the
    other holds while it waits for that message (a deadlock: one of them aborted)."""
    await instructions.mark_delivered(session, instruction_ids=_instruction_ids(rows), at=at)
    await repository.mark_sent(session, [r.id for r in rows], at=at)


def _record(row: OutboxMessage) -> Record:
    return Record(
        topic=row.topic or "",
        key=(row.key or "").encode(),
        value=orjson.dumps(row.payload),
        headers=[(signing.IDEMPOTENCY_KEY, row.message_id.encode())],
    )


def _instruction_ids(rows: list[OutboxMessage]) -> list[Any]:
    return [r.instruction_id for r in rows if r.payload.get("type") == "instruction" and r.instruction_id]


def _failed_with(row: OutboxMessage) -> uuid.UUID | None:
    """The instruction that giving the row up may fail (or whose notice's failure it escalates): an
    instruction's or a notice's message."""
    return row.instruction_id if row.payload.get("type") in ("instruction", "notice") else None


def _message_id(record: ConsumerRecord) -> str | None:
    value = dict(record.headers or ()).get(signing.IDEMPOTENCY_KEY)
    return value.decode() if value is not None else None
