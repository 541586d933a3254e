"""A kit service (services.kit.http.serve) takes its port before its app starts: on a port another process
holds it exits without having started its background work (consumers, relay, scheduler: the app's
lifespan), rather than starting it, failing to bind, and being restarted to start it again."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from typing import Any

# A kit service whose lifespan (where a service starts its background work) says on stdout that it ran,
# then takes the start-up seconds given.
SERVICE = """
import asyncio, contextlib, sys, types
from services.kit.http import create_app, serve

@contextlib.asynccontextmanager
async def lifespan(app):
    print("background work started", flush=True)
    await asyncio.sleep(float(sys.argv[2]))
    yield

async def health():
    return {}

def build(common, settings):
    return create_app(title="test", health=health, lifespan=lifespan)

serve(build, types.SimpleNamespace(host="127.0.0.1", port=int(sys.argv[1])), service="test")
"""


async def _start(port: int, startup_s: float = 0) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE,
        str(port),
        str(startup_s),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _held() -> socket.socket:
    """A port another process serves on."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


async def test_a_service_on_a_port_in_use_exits_before_its_background_work_starts():
    with _held() as holder:
        process = await _start(holder.getsockname()[1])
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 3
    assert out == b""  # its lifespan never ran
    logged = [json.loads(line) for line in err.decode().splitlines()]
    refused = [entry for entry in logged if entry["msg"].startswith("cannot listen")]
    assert len(refused) == 1, logged
    assert "in use" in refused[0]["error"]


async def test_a_service_on_a_free_port_starts_its_background_work():
    """The same service, the port free: its lifespan runs (what the test above sees not happen)."""
    process = await _start(_free_port())
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line == b"background work started\n"
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == -signal.SIGTERM  # having stopped gracefully, uvicorn ends by the signal


async def test_sigusr1_during_the_start_up_logs_what_each_task_waits_on():
    """The task dump is installed as the event loop starts, before the app's start-up: a start-up that
    hangs (a consumer that cannot join its group, say) can be asked what it waits on, and is not ended."""
    process = await _start(_free_port(), startup_s=60)
    try:
        assert process.stdout is not None and process.stderr is not None
        assert await asyncio.wait_for(process.stdout.readline(), 30) == b"background work started\n"
        process.send_signal(signal.SIGUSR1)
        logged: list[dict[str, Any]] = []
        while not logged or logged[-1]["msg"] != "task dump done":
            logged.append(json.loads(await asyncio.wait_for(process.stderr.readline(), 30)))
        assert process.returncode is None  # still starting
        waits = [entry["awaits"] for entry in logged if entry["msg"] == "task waiting"]
        assert any(any(at.endswith(".lifespan") for at in chain) for chain in waits), waits
    finally:
        process.kill()
        await process.communicate()
