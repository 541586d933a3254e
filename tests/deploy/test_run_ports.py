"""make run's own listeners (the gateways' stand-in, the simulator's and the supervisor's metrics) move with
their environment variables, as the services' ports do: a second stack on one machine clashed on them."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

SHOW = """
import deploy.local.run as r
gateway = next(c for c in r.CHILDREN if c.name == "gateway")
simulator = next(c for c in r.CHILDREN if c.name == "simulator")
metrics = simulator.args[simulator.args.index("--metrics-port") + 1]
print(gateway.args[-1], r.SMS_PUSH["STOPLINE_NOTIFIER_SMS_URL"], metrics, r.SUPERVISOR_METRICS_PORT)
"""


def test_make_runs_own_ports_follow_the_environment():
    ports = {
        "STOPLINE_GATEWAY_PORT": "18107",
        "STOPLINE_SIMULATOR_METRICS_PORT": "18109",
        "STOPLINE_SUPERVISOR_METRICS_PORT": "18111",
    }
    shown = subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**os.environ, **ports},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    # The gateway listens where the notifier is told to send, the simulator's metrics where it is told.
    assert shown == ["18107", "http://127.0.0.1:18107/sms", "18109", "18111"]


FLEET = """
import deploy.local.fleet as f
print(*(c.url for c in f.children(2)))
print(*(c.env[s.port_variable] for c, s in zip(f.children(1), f.SERVICES, strict=True)))
"""


def test_make_run_starts_each_service_on_its_port_setting():
    """The services' port settings move the processes make run starts, not only the addresses it shows and
    sends to (a newcomer's second stack listened on the defaults while the simulator posted elsewhere)."""
    ports = {
        "STOPLINE_INGEST_PORT": "18201",
        "STOPLINE_SCORER_PORT": "18202",
        "STOPLINE_SCORER_ACCOUNTS_PORT": "18212",
        "STOPLINE_COORDINATION_PORT": "18203",
    }
    urls, given = _shown(FLEET, ports)
    assert given.split()[:4] == ["18201", "18202", "18212", "18203"]
    assert given.split()[4:] == ["8004", "8005", "8008"]  # the rest on their defaults
    assert "http://127.0.0.1:18201" in urls.split() and "http://127.0.0.1:18301" in urls.split()


WIRED = """
import deploy.local.fleet as f
import deploy.local.run as r
from deploy.story.__main__ import parser
env = {c.name: c.env for c in f.children(2)}
banks = next(c for c in r.CHILDREN if c.name == "banks")
story = parser().parse_args([])
print(env["notifier-2"]["STOPLINE_NOTIFIER_PUBLIC_URL"], env["console-2"]["STOPLINE_CONSOLE_PUBLIC_URL"])
print(banks.env["STOPLINE_BANKSIM_COORDINATION_URL"], story.url, story.gateway, *story.banks)
"""


def test_what_reaches_a_moved_service_is_told_its_port():
    """A newcomer's second stack: the warnings' links and the gateway's receipts went to the notifier's
    default port, the webhook bank's answers to coordination's, and deploy.story to both defaults."""
    ports = {
        "STOPLINE_COORDINATION_PORT": "18203",
        "STOPLINE_NOTIFIER_PORT": "18204",
        "STOPLINE_CONSOLE_PORT": "18208",
        "STOPLINE_GATEWAY_PORT": "18207",
    }
    public, told = _shown(WIRED, ports)
    assert public.split() == ["http://127.0.0.1:18304", "http://127.0.0.1:18308"]  # instance 2: 100 up
    # An address set by hand (a public host, a proxy) is kept.
    kept = {
        "STOPLINE_NOTIFIER_PUBLIC_URL": "https://warn.example",
        "STOPLINE_BANKSIM_COORDINATION_URL": "http://c:1",
    }
    public_set, told_set = _shown(WIRED, {**ports, **kept})
    assert public_set.split()[0] == "https://warn.example" and told_set.split()[0] == "http://c:1"
    assert told.split() == [
        "http://127.0.0.1:18203",
        "http://127.0.0.1:18203",
        "http://127.0.0.1:18207",
        "bank-a",
        "bank-b",
        "pay-a",
        "bank-c",
    ]


def _shown(code: str, settings: dict[str, str]) -> list[str]:
    """The lines `code` prints in a fresh interpreter given these settings and none of the environment's
    own ports or addresses."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("STOPLINE_") and (k.endswith("_PORT") or k.endswith("_URL")))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**inherited, **settings},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()


def test_make_runs_feed_prints_an_alert_once_and_each_later_revision():
    from deploy.local.run import AlertFeed

    def alert(revision: int, reason: str) -> dict[str, Any]:
        return {
            "id": "a1",
            "revision": revision,
            "typology": "suspicious_payment",
            "score": 0.9,
            "reasons": [reason],
            "recommended_actions": ["warn_citizen"],
        }

    feed = AlertFeed()
    assert [line.split()[0] for line in feed.news([alert(1, "a new device")])] == ["ALERT"]
    assert feed.news([alert(1, "a new device")]) == []
    revised = feed.news([alert(3, "a new device after an SMS with a link")])
    assert len(revised) == 1 and revised[0].startswith("  rev 3") and "after an SMS" in revised[0]
