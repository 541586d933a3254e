"""Benchmark: from "issue" (the officer's POST) to "delivered to the institution" (the message read from
its Kafka topic), at a fixed rate of stop-payments per second, on the real Kafka and PostgreSQL.

    python -m deploy.bench.instructions [--rate 100] [--duration 30] [--url http://127.0.0.1:8003]

Without `--url` it makes a scratch database and topic prefix, starts its own coordination API and
worker (relay + scheduler) on free ports against them, both ready before the first issue, and drops the
database and topics at the end, so runs neither see nor leave data. With `--url` it drives that service
and its database. It creates its own banks and cases, reads the banks' topics with a plain consumer, and
prints one JSON object: p50/p90/p99/max issue-to-delivery latency, API latency, instructions per second
sustained, and the CPU the span used per instruction by the API, the worker, the benchmark itself and the
machine, with the share of the machine's time that was busy (`deploy.bench.cpu`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.bench import cpu
from deploy.local.common import free_port
from deploy.local.scratch import scratch_site
from deploy.percentile import ms, percentile
from services.institutions import credentials
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.settings import CommonSettings
from services.kit.tokens import issue as issue_token
from streams import acls, admin, topics
from streams.connection import connection

CLIENTS = 8  # HTTP clients the requests are spread over (8 connections each)


@contextlib.asynccontextmanager
async def _service(url: str | None, common: CommonSettings) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """The coordination API to drive, and the processes started here by name: the given one (none), or
    the API and its worker, started here."""
    if url:
        yield url, {}
        return
    port, worker_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": common.database_url,
        "STOPLINE_TOPIC_PREFIX": common.topic_prefix,
        "STOPLINE_COORDINATION_PORT": str(port),
        "STOPLINE_COORDINATION_WORKER_PORT": str(worker_port),
        "STOPLINE_COORDINATION_CONSUME": "false",
        # The API and the relay + scheduler in two processes, one per core, as deployed.
        "STOPLINE_COORDINATION_RELAY": "false",
        "STOPLINE_COORDINATION_SCHEDULER": "false",
        "STOPLINE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.coordination.app", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.coordination.worker", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Both ready before the clock starts: an instruction issued before the relay runs would wait.
        await _ready(proc, base, "coordination")
        await _ready(worker, f"http://127.0.0.1:{worker_port}", "the coordination worker")
        yield base, {"api": proc.pid, "worker": worker.pid}
    finally:
        for child in (proc, worker):
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 15)
            except TimeoutError:
                child.kill()


async def _ready(child: asyncio.subprocess.Process, base: str, name: str, within_s: float = 60.0) -> None:
    """Wait until the child's readiness probe answers 200."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/health/ready", timeout=1)).status_code == 200:
                    return
            if child.returncode is not None:
                raise SystemExit(f"{name} exited at start")
            await asyncio.sleep(0.1)
    raise SystemExit(f"{name} not ready within {within_s:.0f} s")


async def run(*, rate: float, duration: float, url: str | None, banks: int) -> dict[str, Any]:
    if url:
        return await _run(CommonSettings(), rate=rate, duration=duration, url=url, banks=banks)
    name = f"stopline_bench_{uuid.uuid4().hex[:8]}"
    async with scratch_site(CommonSettings(), database=name, prefix=f"bench-coord-{name[-8:]}-") as common:
        return await _run(common, rate=rate, duration=duration, url=None, banks=banks)


async def _run(
    common: CommonSettings, *, rate: float, duration: float, url: str | None, banks: int
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    bank_ids = [f"bench-{run_id}-{n}" for n in range(banks)]
    engine = make_engine(common.database_url, pool_size=2)
    async with unit_of_work(make_sessionmaker(engine)) as session:
        for b in bank_ids:
            await credentials.create_institution(session, institution_id=b, kind="bank", name=b)
    await engine.dispose()
    names = []
    kafka = connection(common, acls.ADMIN)
    for b in bank_ids:  # made up front: topic creation is set-up, not delivery
        await admin.ensure_topic(kafka, topics.instructions_for(b), common.topic_prefix)
        names.append(topics.name(topics.instructions_for(b), common.topic_prefix))

    received: dict[str, float] = {}
    consumer = AIOKafkaConsumer(  # as a bank reads: committed records only (the relay writes transactions)
        **kafka.options(), enable_auto_commit=False, fetch_max_wait_ms=5, isolation_level="read_committed"
    )
    await consumer.start()
    parts = [TopicPartition(t, p) for t in names for p in range(topics.INSTRUCTIONS_PARTITIONS)]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)

    async def consume_some() -> None:
        batch = await consumer.getmany(timeout_ms=50)
        now = time.perf_counter()
        for records in batch.values():
            for r in records:
                received.setdefault(orjson.loads(r.value)["message_id"], now)

    sent: dict[str, float] = {}
    issuing_done = asyncio.Event()
    all_in = asyncio.Event()

    async def consume_all() -> None:
        while True:
            await consume_some()
            if issuing_done.is_set() and all(i in received for i in sent):
                all_in.set()

    reading = asyncio.create_task(consume_all())
    api: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {issue_token(subject='bench', role='operator', unit='bench-unit')}"}
    # Several clients with a few connections each: one pool of hundreds costs httpcore time quadratic in
    # its size at every request, and on two cores the load generator then takes the service's CPU.
    async with contextlib.AsyncExitStack() as stack:
        base, children = await stack.enter_async_context(_service(url, common))
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base, headers=headers, timeout=30, limits=httpx.Limits(max_connections=8)
                )
            )
            for _ in range(CLIENTS)
        ]
        client = clients[0]
        case = await client.post(
            "/v1/cases",
            json={
                "case_number": f"BENCH-{run_id}",
                "title": "benchmark",
                "source": "report",
                "amount_lost": "1000000.00",
                "lost_at": "2026-01-01T00:00:00+00:00",
            },
        )
        case.raise_for_status()
        case_id = case.json()["id"]

        async def one(n: int) -> None:
            body = {
                "kind": "stop_payment",
                "institution_id": bank_ids[n % banks],
                "account": f"B{run_id}{n:08d}",
                "amount": "1000.00",
            }
            began = time.perf_counter()
            try:
                r = await clients[n % CLIENTS].post(f"/v1/cases/{case_id}/instructions", json=body)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                return
            api.append(time.perf_counter() - began)
            if r.status_code != 201:
                errors.append(f"HTTP {r.status_code}")
                return
            sent[r.json()["id"]] = began

        total = int(rate * duration)
        cpu_before = cpu.snapshot(children)
        start = time.perf_counter()
        tasks = []
        for n in range(total):  # open loop: requests go out on schedule whatever the answers do
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        issuing_done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 15)
        cpu_used = cpu.used(cpu_before, cpu.snapshot(children), per=max(len(sent), 1))
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    await consumer.stop()

    latencies = [received[i] - t for i, t in sent.items() if i in received]
    delivered_times = sorted(received[i] for i in sent if i in received)
    span = (delivered_times[-1] - delivered_times[0]) if len(delivered_times) > 1 else float("nan")
    return {
        "benchmark": "issue_to_delivered",
        "target_rate_per_s": rate,
        "duration_s": duration,
        "issued": len(sent),
        "delivered": len(latencies),
        "errors": len(errors),
        "sustained_per_s": round(len(delivered_times) / span, 1) if span == span and span > 0 else None,
        "latency_ms": {
            "p50": ms(percentile(latencies, 50)),
            "p90": ms(percentile(latencies, 90)),
            "p99": ms(percentile(latencies, 99)),
            "max": ms(percentile(latencies, 100)),
        },
        "api_latency_ms": {"p50": ms(percentile(api, 50)), "p99": ms(percentile(api, 99))},
        # From the first issue to the last delivery: the API, its worker (relay), this process, the machine.
        **cpu_used,
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="issue-to-delivery benchmark of stop-payments")
    parser.add_argument("--rate", type=float, default=100.0, help="instructions issued per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of issuing")
    parser.add_argument("--url", default=None, help="a running coordination API (default: start one)")
    parser.add_argument("--banks", type=int, default=4, help="receiving institutions")
    args = parser.parse_args()
    result = asyncio.run(run(rate=args.rate, duration=args.duration, url=args.url, banks=args.banks))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
