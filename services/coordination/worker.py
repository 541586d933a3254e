"""The coordination background worker in its own process: outbox relay, deadline scheduler (with its
periodic jobs: gauges, audit verification, outbox housekeeping) and the institution-responses consumer,
for when the API runs with them switched off
(`STOPLINE_COORDINATION_RELAY=false STOPLINE_COORDINATION_SCHEDULER=false`):

    python -m services.coordination.worker

Several workers (and API processes) may run at once: rows are claimed with SKIP LOCKED and the
consumer group shares the partitions. SIGTERM finishes the batch in hand, then exits.
"""

from __future__ import annotations

import asyncio
import signal

from services.coordination.deadlines.scheduler import Scheduler
from services.coordination.delivery.relay import Relay
from services.coordination.instructions import consumer as responses_consumer
from services.coordination.instructions.service import Context
from services.coordination.jobs import with_the_scheduler
from services.coordination.settings import CoordinationSettings
from services.kit import loopwatch, taskdump
from services.kit.db import make_engine, make_sessionmaker
from services.kit.logging import configure_logging
from services.kit.settings import CommonSettings


async def main() -> None:
    common, settings = CommonSettings(), CoordinationSettings()
    configure_logging(
        service="coordination-worker", level=common.log_level, pseudonym_key=common.pseudonym_key
    )
    common.check_production_secrets(sealing=True)  # the relay signs webhooks with the sealed secrets
    engine = make_engine(common.database_url, pool_size=10)
    sessions = make_sessionmaker(engine)
    ctx = Context(policy=settings, topic_prefix=common.topic_prefix, max_ahead_s=common.event_max_ahead_s)
    relay = Relay(common, settings, sessions)
    scheduler = Scheduler(sessions, ctx, interval_s=settings.scheduler_interval_s)
    runner = responses_consumer.build_runner(common, sessions, ctx)
    jobs = with_the_scheduler(sessions, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    taskdump.install()  # SIGUSR1 logs what every task waits on
    await relay.start()
    scheduler.start()
    watch = loopwatch.start()  # started: logs where the loop is when it stops turning
    tasks = [
        asyncio.create_task(runner.run()),
        *(asyncio.create_task(j.run(), name=n) for n, j in jobs.items()),
    ]
    try:
        await stop.wait()
    finally:
        watch.stop()
        runner.stop()
        for job in jobs.values():
            job.stop()
        await scheduler.stop()
        await relay.stop()
        await asyncio.wait(tasks, timeout=15)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
