"""`make run`: starts Kafka and PostgreSQL (if needed), migrates, creates topics, then runs every
Stopline service and the traffic simulator as child processes, prints where to look, and shows
alerts as they arrive. Ctrl-C stops the children, then the stack it started, leaving nothing behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import start_http_server

from deploy.local import fleet, kafka
from deploy.local.common import REPO_ROOT, UNIT, gateway_port, gateway_url, say
from deploy.local.processes import LOGS, Child, stack_running, step, stop_all, wait_healthy
from deploy.local.staff import USERNAME, Staff
from deploy.local.supervisor import GroupRelease, Supervisor
from services.banksim.settings import BanksimSettings
from services.kit.settings import CommonSettings
from services.simulator.model import INSTITUTIONS

RUN_PREFIX_ROOT = "run-"


# make run's own listeners beside the services' (whose ports are their settings): movable too, so that a
# second stack on one machine can move every port it opens.
GATEWAY = gateway_url()  # the SMS gateway's and push's stand-in
SIMULATOR_METRICS_PORT = int(os.environ.get("STOPLINE_SIMULATOR_METRICS_PORT") or 8009)
SUPERVISOR_METRICS_PORT = int(os.environ.get("STOPLINE_SUPERVISOR_METRICS_PORT") or 8011)


# The first instance of each, where make run starts it (a service bound to 0.0.0.0 is reached here too).
INGEST, COORDINATION, NOTIFIER, BLOCKLIST, CONSOLE = (
    fleet.url_of(fleet.fixed_ports, s) for s in ("ingest", "coordination", "notifier", "blocklist", "console")
)
SIMULATED_BANKS = BanksimSettings()  # the simulated banks and payment provider; their portal users too

# STOPLINE_INSTANCES=2: two instances of every service on the same Kafka and PostgreSQL (the second
# ones 100 ports up), as a deployment beyond one machine would run them.
INSTANCES = int(os.environ.get("STOPLINE_INSTANCES", "1") or "1")
SMS_PUSH = {"STOPLINE_NOTIFIER_SMS_URL": f"{GATEWAY}/sms", "STOPLINE_NOTIFIER_PUSH_URL": f"{GATEWAY}/push"}
CHILDREN = [
    *fleet.children(INSTANCES, env=SMS_PUSH),
    # Simulated banks answering instructions (those of the webhook bank through coordination's API).
    Child(
        "banks",
        ["services.banksim"],
        None,
        env={
            "STOPLINE_BANKSIM_COORDINATION_URL": fleet.unless_set(
                "STOPLINE_BANKSIM_COORDINATION_URL", COORDINATION
            )
        },
    ),
    Child("gateway", ["deploy.local.gateway", "--port", str(gateway_port())], None),
    Child(
        "simulator",
        [
            *("services.simulator", "--provision", "--sink", "http", "--ingest-url", INGEST),
            # A day of ordinary history first, so the scorer knows people's contacts and payees; the
            # model alerts once its state covers its 24 h windows, so on the history only hard rules do.
            # Then each person at the pace the model was trained on (~30 events a day: ~4.9 events/s for
            # 14,000 people, the simulator's default rate), the training typologies and the demo scenarios.
            *("--warmup", "1", "--population", "14000"),
            *("--metrics-port", str(SIMULATOR_METRICS_PORT)),
        ],
        None,
    ),
]


class AlertFeed:
    """Prints alerts newly stored by the coordination service, so the demo shows what happens, and their
    later revisions (a payment merged in, a call or login read late) among the newest."""

    def __init__(self) -> None:
        from services.kit.tokens import issue

        self.headers = {"Authorization": f"Bearer {issue(subject='make-run', role='auditor', unit='local')}"}
        self.seen: dict[str, int] = {}  # alert id → the revision printed
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())

    def poll(self) -> None:
        try:
            page = httpx.get(
                f"{COORDINATION}/v1/alerts",
                params={"since": self.started, "limit": 20},
                headers=self.headers,
                timeout=2,
            ).json()
        except (httpx.HTTPError, ValueError):
            return
        for line in self.news(page.get("items", [])):
            say(line)

    def news(self, newest_first: list[dict[str, Any]]) -> list[str]:
        """A line per alert not printed yet, or revised since it was, oldest first."""
        lines = []
        for alert in reversed(newest_first):
            revision = alert.get("revision", 1)
            if self.seen.get(alert["id"], 0) >= revision:
                continue
            label = "ALERT  " if alert["id"] not in self.seen else f"  rev {revision}"
            self.seen[alert["id"]] = revision
            lines.append(
                f"{label:<7} {alert['typology']:<18} score {alert['score']:.2f}  {alert['reasons'][0]}"
                f"  → {', '.join(alert['recommended_actions'])}"
            )
        return lines


def main() -> None:
    os.chdir(REPO_ROOT)
    stack_was_up = stack_running()
    step(["deploy.local.stack", "up"], "starting Kafka and PostgreSQL", timeout=900)
    # Three nodes (STOPLINE_KAFKA_BROKERS=3) may live in network namespaces: the children are told where.
    os.environ.setdefault("STOPLINE_KAFKA_BOOTSTRAP", kafka.bootstrap_servers())
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    supervisor = Supervisor(CHILDREN)
    release: GroupRelease | None = None
    try:
        step(["services.migrate", "upgrade"], "database migrations", timeout=120)
        # Each run streams on fresh topics (the database keeps its cases and alerts): the simulator
        # warms the scorer up with a day of history every time, and a scorer restored from an earlier
        # run's state would take that history for live traffic.
        step(["streams.admin", "--delete", "--prefix", RUN_PREFIX_ROOT], "removing earlier runs' topics", 60)
        os.environ["STOPLINE_TOPIC_PREFIX"] = f"{RUN_PREFIX_ROOT}{int(time.time())}-"
        # This run's groups only (named with its prefix): Kafka keeps earlier runs' for a week.
        supervisor.release = release = GroupRelease(
            kafka.admin_connection(), os.environ["STOPLINE_TOPIC_PREFIX"]
        )
        step(["streams.admin"], "topic creation", timeout=60)
        # Each simulated institution connects as itself (the simulated banks on Kafka, an institution
        # producing straight to Kafka), with its own topics and grants.
        pairs = [f"{ident}:{kind}" for ident, kind in INSTITUTIONS.items()]
        step(["streams.acls", "institutions", *pairs], "institutions' Kafka principals", 60, quiet=True)
        start_http_server(SUPERVISOR_METRICS_PORT, addr="127.0.0.1")  # the restart counts
        for child in CHILDREN:
            child.start()
            supervisor.started(child)
            wait_healthy(child)
        _banner()
        feed = AlertFeed()
        staff = Staff(SIMULATED_BANKS.institutions)
        polled_at = 0.0
        while not stopping:
            if time.monotonic() - polled_at >= 2:
                polled_at = time.monotonic()
                feed.poll()
                if staff.poll():
                    say(
                        f"CONSOLE bank staff sign in at {CONSOLE}/signin as {USERNAME} of "
                        f"{', '.join(staff.ready)}, password {staff.password}"
                    )
            if not stopping:  # a child that exits because of our Ctrl-C is not restarted
                supervisor.tick()
            time.sleep(0.5)
    finally:
        say("stopping services …")
        supervisor.close()
        if release is not None:
            release.close()
        stop_all(list(reversed(CHILDREN)))
        if not stack_was_up:
            step(["deploy.local.stack", "down"], "stopping Kafka and PostgreSQL", timeout=120)
        say("stopped.")


def _banner() -> None:
    say("")
    say("Stopline is running with simulated traffic.")
    say(f"  ingest API        {INGEST}/docs     metrics {INGEST}/metrics")
    say(f"  coordination API  {COORDINATION}/docs     metrics {COORDINATION}/metrics")
    for child in CHILDREN:
        if child.name.startswith("scorer-"):
            say(f"  {child.name:<17} {child.url}/health   metrics {child.url}/metrics")
    say(f"  notifier          {NOTIFIER}/docs     metrics {NOTIFIER}/metrics")
    say(f"  blocklist         {BLOCKLIST}/docs     metrics {BLOCKLIST}/metrics")
    say(f"  console           {CONSOLE}/   (officers: the local issuer; bank staff: printed below)")
    say(f"  SMS/push gateway  {GATEWAY} (simulated citizens answer some warnings)")
    say(
        f"  simulated banks   answer instructions on Kafka ({', '.join(SIMULATED_BANKS.kafka_institutions)})"
        f" and by webhook ({', '.join(SIMULATED_BANKS.webhook_institutions)})"
    )
    say(f"  simulator         metrics http://127.0.0.1:{SIMULATOR_METRICS_PORT}/metrics")
    say(f"  logs              {Path(LOGS).relative_to(REPO_ROOT)}/<service>.log")
    say(f"  supervisor        metrics http://127.0.0.1:{SUPERVISOR_METRICS_PORT}/metrics (restarts)")
    prefix = os.environ["STOPLINE_TOPIC_PREFIX"]
    say(f"  Kafka             {CommonSettings().kafka_bootstrap} (SASL/SCRAM), topics {prefix}*")
    say(
        "  operator token    .local/venv/bin/python -m services.kit.tokens --sub me --role operator"
        f" --unit {UNIT}"
    )
    say(
        f"  the whole story   .local/venv/bin/python -m deploy.story --url {COORDINATION} --gateway {GATEWAY}"
        f" --banks {','.join(SIMULATED_BANKS.institutions)}"
    )
    say("Alerts appear below as the scorer raises them. Ctrl-C stops everything.")
    say("")


if __name__ == "__main__":
    main()
