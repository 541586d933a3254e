"""The fault suite's traffic on every path, and its ledger of what Stopline acknowledged.

The harness plays everyone outside Stopline: a telecom and a bank posting events (scams among them) to
both ingest instances; officers opening cases and issuing stop-payments through both coordination
instances, and proposing and approving blocklist numbers; two banks reading their instructions from
Kafka as their own principals and answering there; a bank receiving signed webhooks (which the fault
injector takes down or slows) and answering through the API; the SMS and push gateway the notifier
warns citizens through. Each records what it was told was accepted, and how often each message reached
it (what a receiver de-duplicates), for the checks at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from deploy.chaos.spread import spread
from deploy.chaos.stack import PREFIX
from services.coordination.public import verify_webhook
from services.institutions import credentials, delivery
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.tokens import issue
from streams import acls, topics
from streams.connection import KafkaConnection
from streams.consumer import Batch, ConsumerRunner
from streams.producer import Producer, Record
from streams.schemas.instructions import Response as Answer
from streams.schemas.instructions import for_institution_adapter

log = logging.getLogger(__name__)

TELECOM, BANK = "chaos-tel", "chaos-bank"
KAFKA_BANKS = ("chaos-k1", "chaos-k2", "chaos-k3")
SILENT_BANK = "chaos-k3"  # receives its instructions and never answers: they go overdue, escalated once each
HOOK_BANK = "chaos-w1"
UNIT = "chaos-psb"
RETRY_S = 0.5  # between attempts of a call that failed
# After a traffic item that failed (an answer the harness does not expect), the path's next item waits this
# long, doubled with each failure in a row up to the most: a refusal that persists is not sent at a higher
# rate than the path's healthy traffic (a blocklist item every ~3 s).
ITEM_BACKOFF_S = 1.0
ITEM_BACKOFF_MOST_S = 5.0
GRACE_S = 120.0  # how long an item in hand may still take once the traffic stops

IDEMPOTENCY_KEY = "Idempotency-Key"  # the receiver's de-duplication key, as Stopline sends it

# The traffic's scams, mixed: the telecom posts the victim's call or SIM change, then (once it is
# acknowledged) the bank the victim's transfer of 30,000 CNY to a new payee minutes later (`scam_events`).
ScamKind = Literal["call_then_transfer", "sim_change_then_transfer"]
CALL_SCAM: ScamKind = "call_then_transfer"  # a 35-minute call from an unknown number: a hard rule's case
SIM_SCAM: ScamKind = "sim_change_then_transfer"  # an account takeover: the model's case, no hard rule's
SCAMS: tuple[ScamKind, ...] = (CALL_SCAM, SIM_SCAM)
# Every third item of the event loops carries a scam, the kinds in turn, not drawn: even a short run
# holds each kind (the checks ask that each was alerted).
SCAM_EVERY = 3
SCAM_AMOUNT = "30000.00"
SCAM_GAP_S = 1.5  # between a scam's two posts


@dataclass
class Ledger:
    # (institution, event id) answered 200 → when, and the attempts its batch took
    events: dict[tuple[str, str], tuple[datetime, int]] = field(default_factory=dict)
    batches: int = 0
    instructions: dict[str, str] = field(default_factory=dict)  # instruction id → institution
    received: Counter[str] = field(default_factory=Counter)  # message id → times a bank got it
    # response id → (its instruction, when the bank gave it), for the answers Kafka or the API acknowledged
    answers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    sms: Counter[str] = field(default_factory=Counter)  # delivery id → times the gateway got it
    blocklisted: set[str] = field(default_factory=set)  # numbers approved
    # (path, cause) → attempts that failed and were made again. The cause says why a run's traffic was slow:
    # no answer (the transport error's class: refused, timed out, cut) or the answer's status, with the
    # service's error code and the Retry-After it asked for (`_cause`).
    retries: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (path, answered) → the seconds each attempt took, answered (under 500) or not (no answer, or 5xx; a
    # pause of `RETRY_S` follows each of those): where a path's traffic spent its time
    took: defaultdict[tuple[str, bool], list[float]] = field(default_factory=lambda: defaultdict(list))
    # victim → the kind of their scam, once both of its events were acknowledged
    scams: dict[str, ScamKind] = field(default_factory=dict)
    # (loop, error) → times a traffic loop's item failed: an answer the harness does not expect (ingest
    # refusing a retried batch, say) is a finding, reported and failing the run
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def failures(self) -> list[dict[str, Any]]:
        """The traffic's failures as the report lists them, the most frequent first."""
        return [{"loop": loop, "error": error, "n": n} for (loop, error), n in self.errors.most_common()]

    def retried(self, what: str, cause: str) -> None:
        self.retries[(what, cause)] += 1

    def timed(self, what: str, *, answered: bool, began: float) -> None:
        self.took[(what, answered)].append(time.monotonic() - began)

    def retries_by_path(self) -> dict[str, dict[str, Any]]:
        """Per path, the failed attempts and how many of each cause, the most frequent first; and the time
        its attempts took, answered and failed (`took`)."""
        found: dict[str, dict[str, Any]] = {}
        for (what, cause), n in self.retries.most_common():
            path = found.setdefault(what, {"n": 0, "by_cause": {}})
            path["n"] += n
            path["by_cause"][cause] = n
        for (what, answered), times in sorted(self.took.items()):
            path = found.setdefault(what, {"n": 0, "by_cause": {}})
            took = spread(round(t, 3) for t in times) | {"total": round(sum(times), 1)}
            path.setdefault("attempt_s", {})["answered" if answered else "failed"] = took
        return found

    def acknowledged(self, answer: Answer) -> None:
        assert answer.responded_at is not None, "the chaos banks date their answers (`_answer_to`)"
        self.answers[str(answer.response_id)] = (str(answer.instruction_id), answer.responded_at)


def _phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def _account(prefix: str = "ACC") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def scam_events(kind: ScamKind, victim: str, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scam's two events, posted in this order: the telecom's (a long call from an unknown number, or the
    victim's SIM swapped 20 minutes before the payment), then the bank's transfer out to a new payee. The
    SIM change alerts only through the model: in order, or when read after the transfer, by scoring it
    again (tests/deploy/test_chaos_scams.py)."""
    if kind == CALL_SCAM:
        lead = call_event(victim, now - timedelta(minutes=40), 35)
    else:
        lead = sim_change_event(victim, now - timedelta(minutes=23))
    return lead, transfer_event(victim, SCAM_AMOUNT, now - timedelta(minutes=3))


def call_event(callee: str, start: datetime, minutes: float) -> dict[str, Any]:
    return _event(
        "telecom.call",
        start,
        caller=_phone(),
        callee=callee,
        duration_s=int(minutes * 60),
        caller_reported=False,
    )


def sim_change_event(subscriber: str, at: datetime) -> dict[str, Any]:
    return _event("telecom.sim_change", at, subscriber=subscriber)


def transfer_event(payer: str, amount: str, at: datetime) -> dict[str, Any]:
    return _event(
        "bank.transfer",
        at,
        payer_account=_account(),
        payer_phone=payer,
        payee_account=_account("MULE"),
        payee_institution="bank-x",
        amount=amount,
    )


def _event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """An institution's event of that type, with a new id, dated `at`."""
    return {"type": kind, "event_id": f"{kind}-{uuid.uuid4().hex}", "occurred_at": _iso(at), **fields}


class Traffic:
    def __init__(
        self,
        *,
        database_url: str,
        kafka: KafkaConnection,
        ingest: list[str],
        coordination: list[str],
        blocklist: list[str],
        ledger: Ledger,
    ) -> None:
        self.database_url = database_url
        self.kafka = kafka  # the administrator's connection; banks connect as themselves
        self.ingest, self.coordination, self.blocklist = ingest, coordination, blocklist
        self.ledger = ledger
        self.keys: dict[str, str] = {}
        self.hook_secret = ""
        self.hook_port = 0
        self.hook_down = False
        self.hook_delay_s = 0.0
        self.stopping = asyncio.Event()  # no new item is started
        self.abandoned = asyncio.Event()  # an item in hand is given up (never acknowledged: not counted)
        self.rng = random.Random(7)  # noqa: S311 - traffic, not security
        self._event_items = 0
        self.http = httpx.AsyncClient(timeout=10)
        self.officer = {"Authorization": f"Bearer {issue(subject='chaos-op', role='operator', unit=UNIT)}"}
        self.approver = {
            "Authorization": f"Bearer {issue(subject='chaos-sup', role='supervisor', unit=UNIT)}"
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[ConsumerRunner] = []
        self._producers: dict[str, Producer] = {}
        self._hook_server: uvicorn.Server | None = None
        self._servers: dict[uvicorn.Server, asyncio.Task[None]] = {}  # the gateway's and the webhook bank's

    # -- set-up ---------------------------------------------------------------------------------------------

    async def provision(self, hook_url: str) -> None:
        """The institutions, their API keys, channels and Kafka principals."""
        engine = make_engine(self.database_url, pool_size=1)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                kinds = {
                    TELECOM: "telecom",
                    BANK: "bank",
                    HOOK_BANK: "bank",
                    **dict.fromkeys(KAFKA_BANKS, "bank"),
                }
                for ident, kind in kinds.items():
                    await credentials.create_institution(session, institution_id=ident, kind=kind, name=ident)
                    self.keys[ident] = await credentials.issue_key(session, institution_id=ident)
                secret = await delivery.configure(
                    session, institution_id=HOOK_BANK, kafka=False, webhook_url=hook_url, rotate_secret=True
                )
                assert secret is not None
                self.hook_secret = secret
        finally:
            await engine.dispose()
        for bank in KAFKA_BANKS:
            await acls.provision_institution(self.kafka, bank, kind="bank", prefix=PREFIX)

    async def start(self, sms_port: int, hook_port: int) -> None:
        self.hook_port = hook_port
        await self._serve(self._sms_app(), sms_port)
        self._hook_server = await self._serve(self._hook_app(), hook_port)
        for bank in KAFKA_BANKS:
            producer = Producer(self.kafka.as_principal(bank), client_id=f"chaos-{bank}", timeout_s=10)
            await producer.start()
            self._producers[bank] = producer
            runner = ConsumerRunner(
                kafka=self.kafka.as_principal(bank),
                group_id=f"{PREFIX}{bank}.instructions",
                topics=[topics.name(topics.instructions_for(bank), PREFIX)],
                handle=functools.partial(self._instructions, bank),
                attempts=1000,  # an answer that cannot be produced is retried, never dropped
            )
            self._runners.append(runner)
            self._tasks.append(asyncio.create_task(runner.run(), name=f"bank-{bank}"))

    def drive(self, *items: Callable[[], Awaitable[None]]) -> None:
        """Start the traffic loops, each repeating one item of a path's traffic (every path's unless
        given), until `stop_traffic`."""
        for item in items or (self._events, self._events, self._instructions_issued, self._blocklist):
            name = item.__name__.lstrip("_")
            self._tasks.append(asyncio.create_task(self._keep_driving(name, item), name=name))

    async def _keep_driving(self, name: str, item: Callable[[], Awaitable[None]]) -> None:
        """An item that raised is recorded in the ledger and the loop goes on with its next item: a task
        that died would be read by no one (its error at most logged when collected), and its path's
        traffic would silently thin out. After failures in a row it backs off (`ITEM_BACKOFF_S`)."""
        backoff = ITEM_BACKOFF_S
        while not self.stopping.is_set():
            try:
                await item()
            except Exception as exc:  # noqa: BLE001 - every failure is a finding for the report
                self.ledger.errors[(name, f"{type(exc).__name__}: {exc}")] += 1
                log.exception("a traffic loop's item failed", extra={"fields": {"loop": name}})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), backoff)
                backoff = min(backoff * 2, ITEM_BACKOFF_MOST_S)
            else:
                backoff = ITEM_BACKOFF_S

    async def stop_traffic(self, grace_s: float = GRACE_S) -> None:
        """Stop sending; the banks go on receiving and answering. An item in hand gets `grace_s` to be
        acknowledged, then is given up (the system is then broken, and the checks say so)."""
        self.stopping.set()
        drivers = [t for t in self._tasks if not t.get_name().startswith("bank-")]
        _, late = await asyncio.wait(drivers, timeout=grace_s) if drivers else (set(), set())
        if late:
            log.warning("traffic items given up after the grace period", extra={"fields": {"n": len(late)}})
            self.abandoned.set()
            await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        self.stopping.set()
        self.abandoned.set()
        for runner in self._runners:
            runner.stop()
        for server in self._servers:
            server.should_exit = True
        _, late = await asyncio.wait(self._tasks, timeout=30) if self._tasks else (set(), set())
        for task in late:  # e.g. an answer to a coordination that no longer answers
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for producer in self._producers.values():
            await producer.stop()
        await self.http.aclose()

    async def _serve(self, app: Starlette, port: int) -> uvicorn.Server:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(), name=f"bank-server-{port}")
        self._servers[server] = task
        self._tasks.append(task)
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event to wait on
            if task.done():
                raise RuntimeError(f"the harness could not serve on port {port}")
            await asyncio.sleep(0.05)
        return server

    # -- the webhook bank, and its faults ---------------------------------------------------------------

    async def hook_outage(self, seconds: float) -> None:
        """The webhook bank's receiver is down (connection refused) for a while."""
        assert self._hook_server is not None
        self._hook_server.should_exit = True
        down = self._servers.pop(self._hook_server)
        await asyncio.sleep(seconds)
        await asyncio.wait_for(down, 30)  # its port is free again
        self._hook_server = await self._serve(self._hook_app(), self.hook_port)

    async def hook_slowness(self, seconds: float, delay_s: float) -> None:
        """The webhook bank answers slower than the relay waits, for a while."""
        self.hook_delay_s = delay_s
        await asyncio.sleep(seconds)
        self.hook_delay_s = 0.0

    def _hook_app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            if not verify_webhook(self.hook_secret, dict(request.headers), body):
                return Response(status_code=401)
            if self.hook_delay_s:
                await asyncio.sleep(self.hook_delay_s)
            message_id = request.headers.get(IDEMPOTENCY_KEY, "")
            self.ledger.received[message_id] += 1
            if self.ledger.received[message_id] == 1:  # the receiver drops repeats
                message = for_institution_adapter.validate_json(body)
                if message.type == "instruction":
                    self._tasks.append(asyncio.create_task(self._answer_by_api(message)))
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    async def _answer_by_api(self, message: Any) -> None:
        answer = _answer_to(message)
        body = answer.model_dump(mode="json", exclude={"instruction_id", "institution_id", "schema_version"})
        headers = {"Authorization": f"Bearer {self.keys[HOOK_BANK]}"}
        path = f"/v1/institution/instructions/{message.instruction_id}/responses"
        while not self.abandoned.is_set():
            status = await self._call("POST", self.coordination, path, "answers", json=body, headers=headers)
            if status is not None and status < 500:
                if status < 300:
                    self.ledger.acknowledged(answer)
                return

    # -- the Kafka banks -----------------------------------------------------------------------------------

    async def _instructions(self, bank: str, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                message_id = dict(record.headers or ()).get(IDEMPOTENCY_KEY, b"").decode()
                self.ledger.received[message_id] += 1
                if self.ledger.received[message_id] > 1:
                    continue  # the receiver drops repeats
                message = for_institution_adapter.validate_json(record.value or b"")
                if message.type != "instruction" or bank == SILENT_BANK:
                    continue
                answer = _answer_to(message)
                topic = topics.name(topics.responses_from(bank), PREFIX)
                value = answer.model_dump_json().encode()
                # Until Kafka acknowledges it (an answer in doubt is sent again: same response id).
                while not self.abandoned.is_set():
                    try:
                        await self._producers[bank].send_all(
                            [Record(topic, value, key=str(message.instruction_id).encode())]
                        )
                    except Exception as exc:  # noqa: BLE001 - Kafka unavailable or in doubt: the answer is repeated
                        self.ledger.retried("answers", f"Kafka: {type(exc).__name__}")
                        await asyncio.sleep(RETRY_S)
                        continue
                    self.ledger.acknowledged(answer)
                    break

    # -- the citizens' gateway -----------------------------------------------------------------------------

    def _sms_app(self) -> Starlette:
        async def sink(request: Request) -> Response:
            try:
                await request.body()
            except ClientDisconnect:  # the sender killed or frozen mid-request: not delivered, sent again
                return Response(status_code=499)
            self.ledger.sms[request.headers.get("Idempotency-Key", "")] += 1
            return Response(status_code=200)

        return Starlette(
            routes=[Route("/sms", sink, methods=["POST"]), Route("/push", sink, methods=["POST"])]
        )

    # -- events ----------------------------------------------------------------------------------------------

    async def _events(self) -> None:
        now = datetime.now(UTC)
        calls = [call_event(_phone(), now - timedelta(minutes=30), 3) for _ in range(6)]
        transfers = [transfer_event(_phone(), "120.00", now - timedelta(minutes=2)) for _ in range(6)]
        await self._post(TELECOM, calls)
        await self._post(BANK, transfers)
        item, self._event_items = self._event_items, self._event_items + 1
        if item % SCAM_EVERY == 0:
            kind = SCAMS[item // SCAM_EVERY % len(SCAMS)]
            victim = _phone()
            lead, transfer = scam_events(kind, victim, now)
            led = await self._post(TELECOM, [lead])
            await asyncio.sleep(SCAM_GAP_S)
            paid = await self._post(BANK, [transfer])
            if led and paid:
                self.ledger.scams[victim] = kind
        await asyncio.sleep(0.2)

    async def _post(self, institution: str, events: list[dict[str, Any]]) -> bool:
        """Post until answered 200 (a retry of the same batch is always safe); then every event is in.
        False if the run was abandoned first."""
        headers = {"Authorization": f"Bearer {self.keys[institution]}"}
        attempts = 0
        while not self.abandoned.is_set():
            attempts += 1
            status = await self._call(
                "POST", self.ingest, "/v1/events", "events", json={"events": events}, headers=headers
            )
            if status == 200:
                now = datetime.now(UTC)
                self.ledger.events.update({(institution, e["event_id"]): (now, attempts) for e in events})
                self.ledger.batches += 1
                return True
            if status is not None and status < 500:
                raise RuntimeError(f"ingest refused a chaos batch: HTTP {status}")
        return False

    # -- instructions ----------------------------------------------------------------------------------------

    async def _instructions_issued(self) -> None:
        bank = self.rng.choice([*KAFKA_BANKS, HOOK_BANK])
        case_id = await self._open_case(bank)
        if case_id is not None:
            await self._issue(case_id, bank)
        await asyncio.sleep(0.7)

    async def _open_case(self, bank: str) -> str | None:
        number = f"CHAOS-{uuid.uuid4().hex[:16]}"
        now = datetime.now(UTC)
        body = {
            "case_number": number,
            "title": "chaos: impersonation scam",
            "source": "report",
            "victim": {"name": "Victim", "phone": _phone(), "institution_id": BANK, "account": _account("V")},
            "amount_lost": "50000.00",
            "lost_at": _iso(now - timedelta(minutes=30)),
            "destinations": [
                {
                    "institution_id": bank,
                    "account": _account("MULE"),
                    "amount": "5000.00",
                    "at": _iso(now - timedelta(minutes=25)),
                }
            ],
        }
        while not self.abandoned.is_set():
            answer = await self._request(
                "POST", self.coordination, "/v1/cases", "cases", json=body, headers=self.officer
            )
            if answer is not None and answer.status_code == 201:
                return str(answer.json()["id"])
            if answer is not None and answer.status_code == 409:  # made by an attempt that seemed to fail
                return await self._case_by_number(number)
            if answer is not None and answer.status_code < 500:
                raise _refused("case", answer)
            if self.stopping.is_set():
                return None
        return None

    async def _case_by_number(self, number: str) -> str | None:
        while not self.abandoned.is_set():
            answer = await self._request(
                "GET", self.coordination, "/v1/cases?limit=500", "cases", headers=self.officer
            )
            if answer is not None and answer.status_code == 200:
                found = [c["id"] for c in answer.json() if c["case_number"] == number]
                return str(found[0]) if found else None
        return None

    async def _issue(self, case_id: str, bank: str) -> None:
        body = {
            "kind": "stop_payment",
            "institution_id": bank,
            "account": _account("MULE"),
            "amount": "5000.00",
            "reason": "chaos: the victim's money went there",
        }
        path = f"/v1/cases/{case_id}/instructions"
        while not self.abandoned.is_set():
            answer = await self._request(
                "POST", self.coordination, path, "instructions", json=body, headers=self.officer
            )
            if answer is not None and answer.status_code == 201:
                self.ledger.instructions[str(answer.json()["id"])] = bank
                return
            if answer is not None and answer.status_code == 409:  # issued by an attempt that seemed to fail
                await self._issued_on(case_id, bank)
                return
            if answer is not None and answer.status_code < 500:
                raise _refused("instruction", answer)

    async def _issued_on(self, case_id: str, bank: str) -> None:
        while not self.abandoned.is_set():
            answer = await self._request(
                "GET", self.coordination, f"/v1/cases/{case_id}", "instructions", headers=self.officer
            )
            if answer is not None and answer.status_code == 200:
                for row in answer.json().get("instructions", []):
                    self.ledger.instructions[str(row["id"])] = bank
                return

    # -- blocklist -------------------------------------------------------------------------------------------

    async def _blocklist(self) -> None:
        number = _phone()
        body = {"number": number, "category": "impersonation", "reason": "chaos: reported by victims"}
        entry = None
        while entry is None and not self.stopping.is_set():
            answer = await self._request(
                "POST",
                self.blocklist,
                "/v1/blocklist/proposals",
                "blocklist",
                json=body,
                headers=self.officer,
            )
            if answer is not None and answer.status_code in (200, 201):
                entry = answer.json()["id"]
            elif answer is not None and answer.status_code == 409:
                # "a live entry for this number was made meanwhile; retry": an earlier attempt that seemed
                # to fail made it as this one ran. As the service says, the retry is answered that entry.
                self.ledger.retried("blocklist", _cause(answer))
                await asyncio.sleep(RETRY_S)
            elif answer is not None:
                raise _refused("proposal", answer)
        review = {"decision": "approve", "note": "chaos"}
        while entry is not None and not self.abandoned.is_set():
            path = f"/v1/blocklist/entries/{entry}/review"
            answer = await self._request(
                "POST", self.blocklist, path, "blocklist", json=review, headers=self.approver
            )
            # 409: approved by an earlier attempt that seemed to fail
            if answer is not None and answer.status_code in (200, 409):
                self.ledger.blocklisted.add(number)
                break
            if answer is not None:
                raise _refused("approval", answer)
        await asyncio.sleep(3)

    # -- calls -----------------------------------------------------------------------------------------------

    async def _request(
        self, method: str, urls: list[str], path: str, what: str, **kw: Any
    ) -> httpx.Response | None:
        """One attempt at a random instance; None (after a pause) when it could not be reached or was 5xx."""
        url = self.rng.choice(urls)
        began = time.monotonic()
        try:
            answer = await self.http.request(method, f"{url}{path}", **kw)
        except httpx.HTTPError as exc:  # ConnectError (refused), ConnectTimeout, ReadTimeout, ...
            self.ledger.retried(what, f"no answer: {type(exc).__name__}")
        else:
            if answer.status_code < 500:
                self.ledger.timed(what, answered=True, began=began)
                return answer
            self.ledger.retried(what, _cause(answer))
        self.ledger.timed(what, answered=False, began=began)
        await asyncio.sleep(RETRY_S)
        return None

    async def _call(self, method: str, urls: list[str], path: str, what: str, **kw: Any) -> int | None:
        answer = await self._request(method, urls, path, what, **kw)
        return None if answer is None else answer.status_code


def _refused(what: str, answer: httpx.Response) -> RuntimeError:
    """An answer the harness does not expect: its loop records it (`Traffic._keep_driving`)."""
    return RuntimeError(f"a chaos {what} was refused: HTTP {answer.status_code} {answer.text[:200]}")


def _cause(answer: httpx.Response) -> str:
    """Why an attempt was answered but not done: its status, the service's error code and message when the
    body is Stopline's error, and the Retry-After asked for (`HTTP 503 in_doubt: these events… (Retry-After
    2)`)."""
    cause = f"HTTP {answer.status_code}"
    with contextlib.suppress(ValueError, LookupError, TypeError):  # not JSON, or not an error body
        error = answer.json()["error"]
        cause += f" {error['code']}: {str(error['message'])[:100]}"
    if (after := answer.headers.get("Retry-After")) is not None:
        cause += f" (Retry-After {after})"
    return cause


def _answer_to(message: Any) -> Answer:
    return Answer(
        response_id=uuid.uuid5(uuid.NAMESPACE_URL, f"chaos/{message.message_id}"),
        instruction_id=message.instruction_id,
        institution_id=message.institution_id,
        outcome="executed",
        held_amount=message.amount,
        responded_at=datetime.now(UTC),
    )
