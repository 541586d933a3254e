"""A kit service (services.kit.http.serve) takes its port before its app starts: on a port a serving process
holds it exits without having started its background work (consumers, relay, scheduler: the app's
lifespan), rather than starting it, failing to bind, and being restarted to start it again. Bound, it
listens only when it serves: a process that bound the same port at the same moment and listened first makes
it stop its work and exit the same way."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from typing import Any

import pytest

# A kit service whose lifespan (where a service starts its background work) says on stdout that it ran,
# then takes the start-up seconds given.
SERVICE = """
import asyncio, contextlib, sys, types
from services.kit.http import create_app, serve

@contextlib.asynccontextmanager
async def lifespan(app):
    print("background work started", flush=True)
    if sys.argv[2] == "stdin":  # its start-up lasts until a line comes on stdin
        await asyncio.to_thread(sys.stdin.readline)
    else:
        await asyncio.sleep(float(sys.argv[2]))
    yield
    print("background work stopped", flush=True)

async def health():
    return {}

def build(common, settings):
    return create_app(title="test", health=health, lifespan=lifespan)

serve(build, types.SimpleNamespace(host="127.0.0.1", port=int(sys.argv[1])), service="test")
"""


async def _start(port: int, startup_s: float | str = 0) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE,
        str(port),
        str(startup_s),
        stdin=asyncio.subprocess.PIPE,
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
    assert "in use" in _refused(err)[0]["error"]


def _refused(err: bytes) -> list[dict[str, Any]]:
    logged = [json.loads(line) for line in err.decode().splitlines()]
    refused = [entry for entry in logged if entry["msg"].startswith("cannot listen")]
    assert len(refused) == 1, logged
    return refused


async def test_a_service_that_bound_a_port_another_listened_on_first_stops_its_work_and_exits():
    """Two processes starting at the same moment on one port both bind it (neither listens yet): the one
    still starting when the other listens cannot listen when it serves, stops its work and exits 3 (under
    uvloop it used to log "serving", keep its work running and accept nothing)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as bind_port does
        other.bind(("127.0.0.1", 0))
        process = await _start(other.getsockname()[1], "stdin")
        try:
            assert process.stdout is not None and process.stdin is not None
            assert await asyncio.wait_for(process.stdout.readline(), 30) == b"background work started\n"
            other.listen()  # the other process serves first
            process.stdin.write(b"go on\n")  # its start-up is done: it serves now
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.communicate()
    assert process.returncode == 3, err.decode()
    assert out == b"background work stopped\n"
    assert "in use" in _refused(err)[0]["error"]


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


async def test_the_scorers_server_on_a_port_another_listened_on_first_exits_3():
    """The scorer runs uvicorn itself (services.scorer.main): the same clash ends it the same way."""
    import uvicorn

    from services.kit.http import bind_port, create_app
    from services.scorer.main import _QuietServer
    from services.scorer.settings import ScorerSettings

    async def health() -> dict[str, str]:
        return {}

    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        settings = ScorerSettings(host="127.0.0.1", port=other.getsockname()[1])
        sock = bind_port(settings)
        other.listen()  # the other process serves first
        app = create_app(title="test", health=health)
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
        with pytest.raises(SystemExit) as stopped:
            await _QuietServer(config, settings).serve(sockets=[sock])
    assert stopped.value.code == 3
