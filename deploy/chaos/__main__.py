"""`make chaos`: the fault suite. Starts its own stack (three Kafka nodes in network namespaces, PostgreSQL,
two instances of every service), drives traffic on every path, checks that the two instances share
every consumer group and that killing one of each moves its work to the other, injects faults at random
for a bounded time, lets the system settle and checks from Kafka and the database that nothing
acknowledged was lost and nothing doubled past what its receiver drops. Writes a JSON report.

    python -m deploy.chaos --faults 1000 --minutes 60 --report .local/chaos-report.json

As root (with `ip`) the nodes live in network namespaces and one may be cut off the network; otherwise they
share the host's and that fault is left out. Every process it starts, it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.chaos.spread import spread
from deploy.chaos.stack import PREFIX, ROOT, environment, watch_closely
from deploy.chaos.stack import database_url as stack_database_url
from deploy.local.common import free_port

if TYPE_CHECKING:
    from deploy.chaos.faults import Fault

TARGET_SERVICE_S, TARGET_BROKER_S = 10.0, 30.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.chaos", description=__doc__)
    parser.add_argument("--faults", type=int, default=1000, help="how many faults to inject")
    parser.add_argument(
        "--minutes", type=float, default=60.0, help="the longest the faults may take (the run fails short)"
    )
    parser.add_argument("--every", type=float, default=1.0, help="seconds at least between two faults")
    parser.add_argument("--report", type=Path, default=ROOT.parent / "chaos-report.json")
    parser.add_argument(
        "--settle-minutes", type=float, default=10.0, help="longest wait for lag 0 at the end"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if os.environ.get("STOPLINE_LOCAL_DIR") != str(ROOT):
        # deploy.local.* must see the suite's stack from their import on: start again with its environment.
        sms_port, hook_port = free_port(), free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            **environment(f"http://127.0.0.1:{sms_port}"),
            "STOPLINE_CHAOS_PORTS": f"{sms_port},{hook_port}",
        }
        os.execve(sys.executable, [sys.executable, "-m", "deploy.chaos", *(argv or sys.argv[1:])], env)  # noqa: S606
    # SIGTERM (a test's timeout, a CI cancel) unwinds like Ctrl-C, so `run` stops every process it started.
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(args)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.stdout.write("".join(f"chaos: {line}\n" for line in summary(report)))
    sys.exit(0 if report["pass"] else 1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from deploy.chaos.stack import Stack
    from deploy.local.common import say

    stack = Stack()
    began = datetime.now(UTC)
    try:
        say("chaos: starting the suite's stack (three Kafka nodes, PostgreSQL)")
        stack.up()
        say("chaos: starting two instances of every service")
        stack.start_services()
        return asyncio.run(_drive(args, stack, began))
    finally:
        stack.stop_services()
        stack.down_stack()


async def _drive(args: argparse.Namespace, stack: Any, began: datetime) -> dict[str, Any]:
    from deploy.chaos import checks, fleet_checks
    from deploy.chaos.faults import HEALED_WITHIN_S, Injector
    from deploy.chaos.traffic import Ledger, Traffic
    from deploy.local import kafka
    from deploy.local.common import say
    from services.kit.db import make_engine, make_sessionmaker

    sms_port, hook_port = (int(p) for p in os.environ["STOPLINE_CHAOS_PORTS"].split(","))
    database_url = stack_database_url()
    admin = kafka.admin_connection()
    ledger = Ledger()
    traffic = Traffic(
        database_url=database_url,
        kafka=admin,
        ingest=stack.urls("ingest"),
        coordination=stack.urls("coordination"),
        blocklist=stack.urls("blocklist"),
        ledger=ledger,
    )
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    report: dict[str, Any] = {
        "started_at": began.isoformat(timespec="seconds"),
        "prefix": PREFIX,
        "observer_nice": watch_closely(),
    }
    try:
        await traffic.provision(f"http://127.0.0.1:{hook_port}/hook")
        await traffic.start(sms_port, hook_port)
        traffic.drive()
        say("chaos: traffic on every path; checking the two instances share every group")
        report["fleet"] = await fleet_checks.run(admin, stack)
        say(f"chaos: injecting {args.faults} faults (at most {args.minutes:g} minutes)")
        injector = Injector(stack, traffic)
        t0 = time.monotonic()
        await injector.run(seconds=args.minutes * 60, faults=args.faults, every_s=args.every)
        report["fault_phase_s"] = round(time.monotonic() - t0, 1)
        say("chaos: faults over; the traffic stops and the system settles")
        await traffic.stop_traffic()
        report["settle"] = await checks.settle(admin, sessions, timeout_s=args.settle_minutes * 60)
        if report["settle"]["settled_after_s"] is None:
            # Something stopped working without an error: what each instance's tasks wait on is in its log.
            report["settle"]["tasks_dumped"] = await stack.dump_tasks()
        say(f"chaos: settled ({report['settle']}); checking every path from Kafka and the database")
        try:
            report.update(await checks.check(admin, sessions, ledger))
        except Exception as exc:  # noqa: BLE001 - the report says the checks failed, and the run fails
            report["error"] = "".join(traceback.format_exception(exc))
        report["faults"] = {
            "total": len(injector.faults),
            "by_kind": injector.by_kind(),
            "from": injector.t0_wall.isoformat(timespec="milliseconds"),
        }
        report["recovery_s"] = _recoveries(injector.faults)
        report["faults"]["unhealed"] = sum(1 for f in injector.faults if f.recovery_s is None)
        report["faults"]["each"] = [
            [f.kind, f.target, f.at, f.recovery_s, f.instance_ready_s, f.waited_on, f.error, f.down_s]
            for f in injector.faults
        ]
        # Why the slow ones were slow: what the other instance lacked (see faults.Fault.waited_on).
        report["recovery_s"]["service_slow_waited_on"] = dict(
            Counter(
                f.waited_on
                for f in injector.faults
                if f.kind.startswith("service_") and (f.recovery_s or HEALED_WITHIN_S) >= TARGET_SERVICE_S
            ).most_common()
        )
        report["retries"] = ledger.retries_by_path()
        report["traffic"] = {"errors": ledger.failures()}
        report["restarts"] = {c.name: len(stack.supervisor.restarts(c.name)) for c in stack.children}
    finally:
        await traffic.close()
        await engine.dispose()
    report["pass"] = _passed(report, args.faults)
    return report


def _recoveries(faults: list[Fault]) -> dict[str, Any]:
    groups = {
        "service": ("service_", "recovery_s"),
        "service_instance_ready": ("service_", "instance_ready_s"),
        "broker": ("broker_", "recovery_s"),
        "broker_node_back_in_sync": ("broker_", "instance_ready_s"),
        "database": ("database_", "recovery_s"),
    }
    found: dict[str, Any] = {}
    targets = {"service_": TARGET_SERVICE_S, "broker_": TARGET_BROKER_S}
    for group, (head, field) in groups.items():
        found[group] = spread(
            (getattr(f, field) for f in faults if f.kind.startswith(head)), targets.get(head)
        )
    # Service faults by what else was down while they healed: with PostgreSQL stopped or starting again,
    # no instance of a service that needs it can be ready, whichever instance was faulted.
    service = [f for f in faults if f.kind.startswith("service_") and f.recovery_s is not None]
    with_database = [f for f in service if _during(f, faults, "database_")]
    with_broker = [f for f in service if f not in with_database and _during(f, faults, "broker_")]
    alone = [f for f in service if f not in with_database and f not in with_broker]
    for group, these in (
        ("service_alone", alone),
        ("service_with_a_kafka_node_faulted", with_broker),
        ("service_with_postgresql_stopped", with_database),
    ):
        found[group] = spread((f.recovery_s for f in these), TARGET_SERVICE_S)
    # Across those: whether Kafka was whole while they healed, no node down nor back with its partitions
    # not yet all in sync (writes with acks=all, group coordinators and leaders wait on that too).
    found["service_with_kafka_whole"] = spread(
        (f.recovery_s for f in service if not _during(f, faults, "broker_", until_healed=True)),
        TARGET_SERVICE_S,
    )
    found["service_after_its_servers_back"] = spread(
        (_after_servers_back(f, faults) for f in service), TARGET_SERVICE_S
    )
    return {group: spread for group, spread in found.items() if spread}


def _after_servers_back(fault: Fault, faults: list[Fault]) -> float | None:
    """A service fault's recovery counted from when the servers it needs were back, if one was down while
    it healed: PostgreSQL running again (not for the scorer, whose state is in Kafka), a Kafka node's
    partitions writable again. That part is the instance's own; the rest waited on the server (0 when the
    work resumed before the server was back: the other instance did not need it)."""
    from deploy.chaos.faults import USES_POSTGRES

    if fault.recovery_s is None:
        return None
    service = fault.target.rsplit("-", 1)[0]  # coordination-2 → coordination
    needs = ("broker_", "database_") if service in USES_POSTGRES else ("broker_",)
    backs = _ended_while_healing(
        fault, faults, needs, lambda o: o.down_s if o.kind.startswith("database_") else o.recovery_s
    )
    return round(max(0.0, fault.at + fault.recovery_s - max([fault.at, *backs])), 2)


def _during(fault: Fault, faults: list[Fault], head: str, *, until_healed: bool = False) -> bool:
    """Whether a server of that kind (PostgreSQL, a Kafka node) was down while this fault healed (or,
    `until_healed`, down or not yet healed: a Kafka node until it is back with every partition in full
    sync)."""

    def until(other: Fault) -> float | None:
        if not until_healed:
            return other.down_s
        return other.instance_ready_s if other.kind.startswith("broker_") else other.recovery_s

    return bool(_ended_while_healing(fault, faults, (head,), until))


def _ended_while_healing(
    fault: Fault, faults: list[Fault], heads: tuple[str, ...], until: Callable[[Fault], float | None]
) -> list[float]:
    """When each fault of those kinds that overlapped this one's healing ended, `until(it)` after it began
    (unknown: not healed, not measured, the longest it may)."""
    from deploy.chaos.faults import HEALED_WITHIN_S

    def lasted(seconds: float | None) -> float:
        return HEALED_WITHIN_S if seconds is None else seconds

    healed = fault.at + lasted(fault.recovery_s)
    ends = ((other.at, other.at + lasted(until(other))) for other in faults if other.kind.startswith(heads))
    return [end for began, end in ends if began < healed and end > fault.at]


def summary(report: dict[str, Any]) -> list[str]:
    """The run in a few lines, printed after its report: the faults, what was lost or doubled, the scams
    alerted, and why the traffic's attempts failed (a run whose traffic was thin says why)."""
    faults = report.get("faults", {})
    injected = ", ".join(f"{kind} {n}" for kind, n in sorted(faults.get("by_kind", {}).items()))
    paths = report.get("paths", {})
    alerts = paths.get("alerts", {})
    scams = sorted(alerts.get("scams_by_kind", {}).items())
    by_kind = ", ".join(f"{kind} {n['alerted']} of {n['scams']}" for kind, n in scams)
    lines = [
        f"faults {faults.get('total', 0)} ({injected}), {faults.get('unhealed', 0)} unhealed",
        f"lost {_per_path(paths, 'lost')}",
        f"doubled {_per_path(paths, 'doubled')}; where nothing drops them "
        f"{_per_path(paths, 'doubled_undeduplicated')}",
        f"scams alerted {alerts.get('scams_alerted', 0)} of {alerts.get('scams', 0)} ({by_kind})",
    ]
    for what, failed in report.get("retries", {}).items():
        if not failed["n"]:
            continue
        causes = "; ".join(f"{n} {cause}" for cause, n in failed["by_cause"].items())
        lines.append(f"failed attempts, {what}: {failed['n']} ({causes})")
    return [*lines, "pass" if report.get("pass") else "FAIL"]


def _per_path(paths: dict[str, Any], key: str) -> str:
    """`3 (answers 2, warnings 1)`: the total and the paths that have any."""
    some = {name: p[key] for name, p in paths.items() if p.get(key)}
    named = ", ".join(f"{name} {n}" for name, n in some.items())
    return f"{sum(some.values())}" + (f" ({named})" if named else "")


def _passed(report: dict[str, Any], faults: int) -> bool:
    paths = report.get("paths", {})
    recovery = report.get("recovery_s", {})
    return bool(
        "error" not in report
        and report.get("faults", {}).get("total", 0) >= faults
        and not report["faults"].get("unhealed")
        and all(p["lost"] == 0 and p["doubled_undeduplicated"] == 0 for p in paths.values())
        and paths.get("alerts", {}).get("scams_alerted") == paths.get("alerts", {}).get("scams")
        and report.get("audit", {}).get("ok")
        and report.get("settle", {}).get("settled_after_s") is not None
        and recovery.get("service", {}).get("p99", 0) < TARGET_SERVICE_S
        and recovery.get("broker", {}).get("p99", 0) < TARGET_BROKER_S
        and report.get("fleet", {}).get("ok")
        and report.get("traffic", {}).get("errors") == []
    )


if __name__ == "__main__":
    main()
