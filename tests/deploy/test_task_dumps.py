"""A fault run that does not settle has every instance log what its tasks wait on before it stops them:
a service run as every service is answers SIGUSR1 with its task dump, and the suite waits for it."""

from __future__ import annotations

import asyncio

from deploy.chaos.stack import dump_tasks
from deploy.local.common import free_port
from deploy.local.processes import Child, wait_healthy


async def test_the_suite_has_a_running_service_log_its_tasks():
    port = free_port()
    child = Child("task-dump-check", ["tests.deploy.child", "kit", str(port)], url=f"http://127.0.0.1:{port}")
    child.start()
    try:
        await asyncio.to_thread(wait_healthy, child, 60)
        assert await dump_tasks([child]) == ["task-dump-check"]
        assert child.proc is not None and child.proc.poll() is None  # logged, not ended by the signal
    finally:
        child.stop()
