"""Benchmark: time from the triggering event to the warning handed to the SMS gateway, p50 / p99, under
background traffic produced straight to Kafka. The scorer must be running on the same topic prefix
(`make bench` starts it; `--spawn-scorer` starts one here); the notifier is started here, pointed at an
in-process gateway that timestamps each message it takes. Prints one JSON object.

    python -m deploy.bench.warning_latency --rate 1000 --duration 30 --scams-per-s 5 [--spawn-scorer]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from deploy.local.common import free_port
from deploy.local.gateway import Behaviour, Receiver, serving
from deploy.local.processes import Child, step, wait_healthy
from deploy.percentile import ms, percentile
from services.kit.settings import CommonSettings
from services.notifier.settings import NotifierSettings
from streams import acls, keys, topics
from streams.admin import delete_topics, ensure_topics
from streams.connection import connection
from streams.producer import Producer, Record

TEL, BANK = "bench-telecom", "bench-bank"


def _iso(at: datetime) -> str:
    return at.isoformat()


def _phone() -> str:
    return f"+86137{random.randrange(10**8):08d}"


class Traffic:
    """Ordinary life for a fixed population: short calls between people, small transfers to known payees."""

    def __init__(self, prefix: str, population: int = 20_000) -> None:
        self.people = [_phone() for _ in range(population)]
        self.tel = topics.name(topics.EVENTS_TELECOM, prefix)
        self.bank = topics.name(topics.EVENTS_BANK, prefix)

    def batch(self, n: int) -> list[Record]:
        now = datetime.now(UTC)
        out = []
        for _ in range(n):
            person = random.choice(self.people)
            if random.random() < 0.6:
                event = {
                    "type": "telecom.call",
                    "event_id": uuid.uuid4().hex,
                    "occurred_at": _iso(now),
                    "caller": random.choice(self.people),
                    "callee": person,
                    "duration_s": random.randint(10, 240),
                }
                out.append(self._record(self.tel, TEL, event, person))
            else:
                event = {
                    "type": "bank.transfer",
                    "event_id": uuid.uuid4().hex,
                    "occurred_at": _iso(now),
                    "payer_account": f"ACC{abs(hash(person)) % 10**10:010d}",
                    "payer_phone": person,
                    "payee_account": f"SHOP{random.randrange(50):04d}",
                    "payee_institution": BANK,
                    "amount": f"{random.randint(5, 800)}.00",
                }
                out.append(self._record(self.bank, BANK, event, person))
        return out

    def scam(self) -> tuple[str, datetime, list[Record]]:
        """A 35-minute call from an unknown number that just ended, then a large transfer now."""
        victim, now = _phone(), datetime.now(UTC)
        call = {
            "type": "telecom.call",
            "event_id": uuid.uuid4().hex,
            "occurred_at": _iso(now - timedelta(minutes=36)),
            "caller": _phone(),
            "callee": victim,
            "duration_s": 35 * 60,
        }
        transfer = {
            "type": "bank.transfer",
            "event_id": uuid.uuid4().hex,
            "occurred_at": _iso(now),
            "payer_account": f"V{uuid.uuid4().hex[:12].upper()}",
            "payer_phone": victim,
            "payee_account": f"MULE{uuid.uuid4().hex[:10].upper()}",
            "payee_institution": BANK,
            "amount": "48000.00",
        }
        return (
            victim,
            now,
            [self._record(self.tel, TEL, call, victim), self._record(self.bank, BANK, transfer, victim)],
        )

    @staticmethod
    def _record(topic: str, institution: str, event: dict[str, Any], person: str) -> Record:
        return Record(
            topic, orjson.dumps({"institution": institution, "event": event}), keys.person_key(person)
        )


async def _drive(args: argparse.Namespace, common: CommonSettings, receiver: Receiver) -> dict[str, Any]:
    traffic = Traffic(common.topic_prefix)
    producer = Producer(connection(common, acls.ADMIN), client_id="notifier-bench", linger_ms=5)
    await producer.start()
    scams: dict[str, datetime] = {}
    sent_events = 0
    try:
        # Warm-up: one scam end to end, so consumer groups have settled before measuring.
        victim, _, records = traffic.scam()
        await producer.send_all(records)
        deadline = time.monotonic() + 60
        while not any(m.payload.get("to") == victim for m in receiver.messages.values()):
            if time.monotonic() > deadline:
                raise SystemExit("no warning reached the gateway within 60 s: is the scorer running?")
            await asyncio.sleep(0.1)
        began = time.monotonic()
        tick = 0.1
        next_scam = began
        while time.monotonic() - began < args.duration:
            t0 = time.monotonic()
            batch = traffic.batch(int(args.rate * tick))
            if t0 >= next_scam:
                victim, at, records = traffic.scam()
                batch.extend(records)
                scams[victim] = at
                next_scam += 1 / args.scams_per_s
            await producer.send_all(batch)
            sent_events += len(batch)
            await asyncio.sleep(max(tick - (time.monotonic() - t0), 0))
        elapsed = time.monotonic() - began
        await asyncio.sleep(args.drain)
    finally:
        await producer.stop()
    arrived = {m.payload["to"]: m.at for m in receiver.messages.values() if m.payload.get("to") in scams}
    latencies = [arrived[v] - scams[v].timestamp() for v in scams if v in arrived]
    return {
        "benchmark": "event_to_warning_handed_to_gateway",
        "background_events_per_s": round(sent_events / elapsed, 1),
        "duration_s": round(elapsed, 1),
        "scams": len(scams),
        "warnings_received": len(latencies),
        "missing": len(scams) - len(latencies),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
        "target_p99_ms": 1000,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    common = CommonSettings()
    await ensure_topics(connection(common, acls.ADMIN), common.topic_prefix)
    base = NotifierSettings()
    receiver = Receiver(base.sms_secret, base.push_secret, Behaviour(receipt_delay_s=0.2))
    gateway_port, notifier_port = free_port(), free_port()
    env = {
        "STOPLINE_TOPIC_PREFIX": common.topic_prefix,
        "STOPLINE_LOG_LEVEL": "WARNING",
        "STOPLINE_NOTIFIER_PORT": str(notifier_port),
        "STOPLINE_NOTIFIER_PUBLIC_URL": f"http://127.0.0.1:{notifier_port}",
        "STOPLINE_NOTIFIER_SMS_URL": f"http://127.0.0.1:{gateway_port}/sms",
        "STOPLINE_NOTIFIER_ANSWER_TIMEOUT_S": "3600",
    }
    children = [Child("bench-notifier", ["services.notifier"], f"http://127.0.0.1:{notifier_port}", env=env)]
    if args.spawn_scorer:
        scorer_port = free_port()
        children.insert(
            0,
            Child(
                "bench-scorer",
                ["services.scorer.main"],
                f"http://127.0.0.1:{scorer_port}",
                env=env | {"STOPLINE_SCORER_PORT": str(scorer_port)},
            ),
        )
    async with serving(receiver.app(), gateway_port):
        try:
            for child in children:
                child.start()
                await asyncio.to_thread(wait_healthy, child)
            return await _drive(args, common, receiver)
        finally:
            for child in reversed(children):
                await asyncio.to_thread(child.stop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="background events per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of measured traffic")
    parser.add_argument("--scams-per-s", type=float, default=5, help="scams injected per second")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for the last warnings")
    parser.add_argument("--spawn-scorer", action="store_true", help="start a scorer here (standalone use)")
    args = parser.parse_args()
    own_topics = args.spawn_scorer and not os.environ.get("STOPLINE_TOPIC_PREFIX")
    if own_topics:  # standalone: keep off the topics of a `make run` on this machine
        os.environ["STOPLINE_TOPIC_PREFIX"] = f"bench-notifier-{int(time.time())}-"
    step(["services.migrate", "upgrade"], "database migrations", timeout=120)
    try:
        result = asyncio.run(_main(args))
    finally:
        if own_topics:
            common = CommonSettings()
            asyncio.run(delete_topics(connection(common, acls.ADMIN), common.topic_prefix))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
