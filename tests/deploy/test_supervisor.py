"""The local supervisor never gives up: a failing child is started again with a growing backoff, the count
of quick failures resets once it has run a stable while, and each restart says why and is counted."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY

from deploy.local.common import free_port
from deploy.local.processes import Child, wait_healthy
from deploy.local.supervisor import Supervisor, exit_cause


def _run(supervisor: Supervisor, child: str, restarts: int, limit_s: float = 60) -> None:
    """Supervise until the child was restarted that often (or the limit passed)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and len(supervisor.restarts(child)) < restarts:
        supervisor.tick()
        time.sleep(0.01)


def _until_answered(supervisor: Supervisor, child: str, limit_s: float = 30) -> None:
    """Supervise until the child has answered a liveness probe (or the limit passed)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not supervisor.watches[child].answered:
        supervisor.tick()
        time.sleep(0.01)


def _until_restarted(supervisor: Supervisor, child: Child, first: int, limit_s: float = 10) -> None:
    """Supervise until the child runs again under a new process (or the limit passed)."""
    assert child.proc is not None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and (child.proc.pid == first or child.proc.poll() is not None):
        supervisor.tick()
        time.sleep(0.01)


def _restarts_counted(child: str, cause: str) -> float:
    return (
        REGISTRY.get_sample_value("stopline_supervisor_restarts_total", {"child": child, "cause": cause})
        or 0.0
    )


def test_a_child_that_keeps_failing_is_started_again_and_again_with_a_growing_backoff():
    child = Child("sup-failing", ["tests.deploy.child", "0", "3"])
    supervisor = Supervisor([child], backoff_s=0.05, backoff_max_s=0.4, stable_s=60)
    child.start()
    supervisor.started(child)
    try:
        _run(supervisor, "sup-failing", 7)
    finally:
        child.stop()
    causes = supervisor.restarts("sup-failing")
    assert len(causes) > 6  # the old supervisor stopped everything at the sixth
    assert set(causes) == {"exit code 3"}
    assert supervisor.watches["sup-failing"].failures == len(causes)  # none ran a stable while
    assert _restarts_counted("sup-failing", "exit code 3") == len(causes)


def test_the_failure_count_resets_after_a_stable_period():
    child = Child("sup-stable", ["tests.deploy.child", "0.5", "1"])
    supervisor = Supervisor([child], backoff_s=5, stable_s=0.3)  # a quick failure would wait 5 s
    child.start()
    supervisor.started(child)
    try:
        _run(supervisor, "sup-stable", 2)
    finally:
        child.stop()
    assert len(supervisor.restarts("sup-stable")) >= 2  # each ran past the stable period: no backoff
    assert supervisor.watches["sup-stable"].failures == 0


def test_a_killed_child_is_started_again_and_the_cause_named():
    child = Child("sup-killed", ["tests.deploy.child", "60", "0"])
    supervisor = Supervisor([child], backoff_s=0.05)
    child.start()
    supervisor.started(child)
    try:
        assert child.proc is not None
        first = child.proc.pid
        child.proc.send_signal(signal.SIGKILL)
        _until_restarted(supervisor, child, first)
        assert child.proc.pid != first and child.proc.poll() is None
    finally:
        child.stop()
    assert supervisor.restarts("sup-killed") == ["killed by SIGKILL"]
    assert exit_cause(-9) == "killed by SIGKILL" and exit_cause(2) == "exit code 2"


def _serving(name: str, delay_s: float) -> Child:
    port = free_port()
    return Child(
        name, ["tests.deploy.child", "serve", str(port), str(delay_s)], url=f"http://127.0.0.1:{port}"
    )


def test_a_child_that_never_comes_up_is_killed_once_its_start_up_time_is_over():
    child = _serving("sup-never-up", delay_s=3600)
    supervisor = Supervisor([child], backoff_s=5, probe_every_s=0.05, probe_failures=1, startup_s=1)
    child.start()
    supervisor.started(child)
    try:
        _run(supervisor, "sup-never-up", restarts=1)
    finally:
        child.stop()
    assert supervisor.restarts("sup-never-up") == ["not live"]


def test_a_slow_start_is_not_taken_for_a_hang_and_a_hang_after_it_is():
    # Not listening for 1.5 s, with a probe every 0.05 s that kills after one failure once the child
    # has answered: only the start-up allowance keeps it alive until its first answer. (A refused
    # connection fails at once; the short probe timeout only shortens finding out the hang after it.)
    child = _serving("sup-slow-start", delay_s=1.5)
    supervisor = Supervisor(
        [child], backoff_s=5, probe_every_s=0.05, probe_failures=1, startup_s=60, probe_timeout_s=0.5
    )
    child.start()
    supervisor.started(child)
    try:
        _until_answered(supervisor, "sup-slow-start")
        assert supervisor.watches["sup-slow-start"].answered
        assert supervisor.restarts("sup-slow-start") == []
        assert child.proc is not None
        child.proc.send_signal(signal.SIGSTOP)  # it hangs: the next failed probe kills it
        _run(supervisor, "sup-slow-start", restarts=1)
    finally:
        child.stop()
    assert supervisor.restarts("sup-slow-start") == ["not live"]


def test_a_hung_child_does_not_delay_the_restart_of_another():
    # The hung child's probe takes its whole timeout; it must not hold up the ticks that start the killed
    # one again (they did when a tick waited for its probes). Proved by order, not by a clock: the killed
    # one runs again while the hung one's probe is still in flight (not yet found out), however slow the
    # machine, as long as a restart takes less than the probe's timeout. One failed probe finds the hung
    # one out: more would only repeat that wait.
    hung = _serving("sup-hung", delay_s=0)
    killed = Child("sup-killed-beside", ["tests.deploy.child", "60", "0"])
    supervisor = Supervisor(
        [hung, killed], backoff_s=0.05, probe_every_s=0.05, probe_failures=1, probe_timeout_s=8.0
    )
    for child in (hung, killed):
        child.start()
        supervisor.started(child)
    try:
        _until_answered(supervisor, "sup-hung")
        assert hung.proc is not None and killed.proc is not None
        hung.proc.send_signal(signal.SIGSTOP)
        supervisor.tick()  # a probe of the hung child is now in flight
        first = killed.proc.pid
        killed.proc.send_signal(signal.SIGKILL)
        _until_restarted(supervisor, killed, first)
        probing = supervisor.watches["sup-hung"].probing
        in_flight = probing is not None and not probing.done()
        hung_found_out_before = supervisor.restarts("sup-hung")
        _run(supervisor, "sup-hung", restarts=1)  # and the hung one is still found out
    finally:
        for child in (hung, killed):
            child.stop()
    assert killed.proc.pid != first
    assert in_flight and hung_found_out_before == []  # restarted while the hung one's probe was out
    assert supervisor.restarts("sup-killed-beside") == ["killed by SIGKILL"]
    assert supervisor.restarts("sup-hung") == ["not live"]


def test_a_child_that_ended_is_released_from_its_groups_while_it_starts_again():
    # The release names the dead process's memberships (not the new process's), so the restart does not
    # wait for it: a release that takes long (a Kafka node down) does not hold the child down.
    releasing = threading.Event()
    may_finish = threading.Event()
    released: list[tuple[str, float]] = []

    def release(child: Child, ended_at: float) -> None:
        released.append((child.name, ended_at))
        releasing.set()
        may_finish.wait(10)

    child = Child("sup-released", ["tests.deploy.child", "60", "0"])
    supervisor = Supervisor([child], backoff_s=0.01, release=release)
    child.start()
    supervisor.started(child)
    try:
        assert child.proc is not None
        first = child.proc.pid
        child.proc.send_signal(signal.SIGKILL)
        _until_restarted(supervisor, child, first)
        assert child.proc.pid != first and child.proc.poll() is None
        assert releasing.wait(5) and not may_finish.is_set()  # started again while its release runs
        # The release goes by what was known before the new process started (not by what it may show).
        [(name, ended_at)] = released
        assert name == "sup-released" and ended_at <= supervisor.watches[name].started_at
    finally:
        may_finish.set()
        child.stop()
        supervisor.close()


def _hang(url: str) -> None:
    try:
        httpx.get(f"{url}/hang", timeout=30)
    except httpx.HTTPError:
        pass  # (the child is killed while it hangs)


def test_a_child_killed_for_liveness_leaves_its_threads_stacks_in_its_log():
    """Where a service hangs, even with its event loop blocked (no task dump can run then)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = Child("sup-stacks", ["tests.deploy.child", "kit", str(port)], url=url)
    # Killed 2 x 1 s of probe timeouts into the hang: past the 1 s the service's loop watch waits before it
    # says where the loop is stuck (services.kit.loopwatch.STALL_S).
    supervisor = Supervisor(
        [child], backoff_s=5, probe_every_s=0.2, probe_failures=2, startup_s=60, probe_timeout_s=1.0
    )
    child.start()
    assert child.log is not None
    before = child.log.tell()  # (the log is appended to, run after run)
    supervisor.started(child)
    try:
        _until_answered(supervisor, "sup-stacks")
        threading.Thread(target=_hang, args=(url,), daemon=True).start()
        _run(supervisor, "sup-stacks", restarts=1)
    finally:
        child.stop()
    assert supervisor.restarts("sup-stacks") == ["not live"]
    assert supervisor.watches["sup-stacks"].probe_failed == "ReadTimeout"
    written = Path(child.log.name).read_bytes()[before:].decode(errors="replace")
    assert "most recent call first" in written and "hang_the_loop" in written
    # and, while it hung, the service's own watch said where its loop was (services.kit.loopwatch)
    stalls = [e for e in map(_json, written.splitlines()) if e.get("msg") == "event loop stalled"]
    assert len(stalls) == 1 and stalls[0]["at"][-1].endswith("hang_the_loop"), stalls


def _json(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def test_a_stopped_service_is_counted_as_paused_not_as_a_stalled_loop():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = Child("sup-paused", ["tests.deploy.child", "kit", str(port)], url=url)
    child.start()
    assert child.proc is not None
    try:
        wait_healthy(child)
        child.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # past the watch's 1 s (STALL_S) and the histogram's first bucket
        child.proc.send_signal(signal.SIGCONT)
        metrics = _metrics_once(url, "stopline_process_pause_seconds_count")
    finally:
        child.stop()
    assert _sample(metrics, "stopline_process_pause_seconds_count") == 1
    assert _sample(metrics, 'stopline_process_pause_seconds_bucket{le="1.0"}') == 0
    assert _sample(metrics, "stopline_event_loop_stall_seconds_count") == 0


def _metrics_once(url: str, counted: str, limit_s: float = 30) -> str:
    """The child's metrics once `counted` has counted something (its watch thread has run since)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        if _sample(metrics, counted) > 0:
            return metrics
        time.sleep(0.05)
    raise AssertionError(f"{counted} never counted")


def _sample(exposition: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exposed")
