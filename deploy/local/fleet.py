"""The services as child processes, any number of instances of each: `make run` starts one of each
(`STOPLINE_INSTANCES=2 make run`: two), the fault suite and its test two, on the same Kafka and
PostgreSQL. Each instance has a port of its own and a stable name (`STOPLINE_INSTANCE`, e.g. ingest-2),
which makes its consumers static members of their groups.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from deploy.local.common import env_port
from deploy.local.processes import Child

# One port per (service, instance): instance 1 on the service's own port, instance n 100 (n - 1) higher.
PortOf = Callable[[str, int], int]


@dataclass(frozen=True)
class Service:
    name: str  # also the log file's and the instance's name
    module: list[str]
    port: int  # instance 1's, unless `moved_by` is set in the environment
    port_variable: str  # the setting the service reads its port from
    env: tuple[tuple[str, str], ...] = ()
    moved_by: str = ""  # the variable that moves instance 1's port, if not `port_variable`


SERVICES = (
    Service("ingest", ["services.ingest.app"], 8001, "STOPLINE_INGEST_PORT"),
    # One process per scorer stage: each gets a core of its own (they meet only on the movements topic).
    Service(
        "scorer-persons",
        ["services.scorer.main"],
        8002,
        "STOPLINE_SCORER_PORT",
        (("STOPLINE_SCORER_STAGES", '["persons"]'),),
    ),
    Service(
        "scorer-accounts",
        ["services.scorer.main"],
        8012,
        "STOPLINE_SCORER_PORT",
        (("STOPLINE_SCORER_STAGES", '["accounts"]'),),
        "STOPLINE_SCORER_ACCOUNTS_PORT",  # the persons stage's process reads STOPLINE_SCORER_PORT
    ),
    # Each coordination instance runs the relay and the scheduler too: rows are claimed with SKIP LOCKED.
    Service("coordination", ["services.coordination.app"], 8003, "STOPLINE_COORDINATION_PORT"),
    Service("notifier", ["services.notifier"], 8004, "STOPLINE_NOTIFIER_PORT"),
    Service("blocklist", ["services.blocklist"], 8005, "STOPLINE_BLOCKLIST_PORT"),
    Service("console", ["services.console"], 8008, "STOPLINE_CONSOLE_PORT"),
)


def fixed_ports(service: str, instance: int) -> int:
    """Instance 1 on the service's port setting (its default unless set), as the services' own settings and
    make run's addresses of them read it; each child's environment is given its port explicitly."""
    s = next(s for s in SERVICES if s.name == service)
    return env_port(s.moved_by or s.port_variable, s.port) + 100 * (instance - 1)


def unless_set(variable: str, value: str) -> str:
    """The environment's value of a setting if it has one (an address set by hand: a public host, a
    proxy), else make run's."""
    return os.environ.get(variable) or value


def url_of(port_of: PortOf, service: str, instance: int = 1) -> str:
    return f"http://127.0.0.1:{port_of(service, instance)}"


def children(
    instances: int,
    *,
    port_of: PortOf = fixed_ports,
    env: dict[str, str] | None = None,
    services: tuple[Service, ...] = SERVICES,
) -> list[Child]:
    """Every service's instances, instance by instance (so the first of each is up before the second).
    Instance n of a service knows instance n of the others (the console its coordination and notifier)."""
    found = []
    for n in range(1, instances + 1):
        for service in services:
            name = service.name if instances == 1 else f"{service.name}-{n}"
            extra = {
                service.port_variable: str(port_of(service.name, n)),
                "STOPLINE_INSTANCE": f"{service.name}-{n}",
                "STOPLINE_CONSOLE_COORDINATION_URL": url_of(port_of, "coordination", n),
                "STOPLINE_CONSOLE_NOTIFIER_URL": url_of(port_of, "notifier", n),
                # Where citizens' links, gateways' receipts and OIDC redirects reach them: their own port,
                # wherever it was moved, unless a public address is set.
                "STOPLINE_NOTIFIER_PUBLIC_URL": unless_set(
                    "STOPLINE_NOTIFIER_PUBLIC_URL", url_of(port_of, "notifier", n)
                ),
                "STOPLINE_CONSOLE_PUBLIC_URL": unless_set(
                    "STOPLINE_CONSOLE_PUBLIC_URL", url_of(port_of, "console", n)
                ),
                **dict(service.env),
                **(env or {}),
            }
            found.append(Child(name, list(service.module), url_of(port_of, service.name, n), env=extra))
    return found
