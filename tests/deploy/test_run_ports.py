"""make run's own listeners (the gateways' stand-in, the simulator's and the supervisor's metrics) move with
their environment variables, as the services' ports do: a second stack on one machine clashed on them."""

from __future__ import annotations

import os
import subprocess
import sys

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
