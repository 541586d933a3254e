"""Where and as whom a Kafka client connects: the one place that builds bootstrap, SASL and TLS options.

Every client (services, simulator, simulated banks, benchmarks, tests' tools) is made through
`KafkaConnection.options()`; nothing writes `bootstrap_servers=` or SASL settings by hand. Each process
connects as a principal of its own (`streams.acls` names them and says what each may do); the settings
may name another (`STOPLINE_KAFKA_USERNAME`, `STOPLINE_KAFKA_PASSWORD`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from typing import Any

from services.kit.settings import CommonSettings

# Development and tests only: every local principal's password is derived from its name with this public
# key, so the local stack, the services and the tests agree without a file of secrets. Production sets
# STOPLINE_KAFKA_PASSWORD (refused otherwise, see CommonSettings.check_production_secrets).
DEVELOPMENT_PASSWORD_KEY = b"stopline-development-kafka-passwords"
MECHANISM = "SCRAM-SHA-512"


def development_password(username: str) -> str:
    """The local stack's password of a principal (never used in production)."""
    return hmac.new(DEVELOPMENT_PASSWORD_KEY, username.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap: str
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"
    ca_file: str | None = None
    instance: str | None = None  # the process's stable name: its consumers are static group members
    session_timeout_ms: int = 6_000
    handler_max_s: float = 60.0  # a consumer's handler still running after this is stuck (streams.consumer)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": MECHANISM,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(cafile=self.ca_file)
        return options

    def as_principal(self, username: str, password: str | None = None) -> KafkaConnection:
        """The same cluster as another principal (a tool acting as an institution); without a password,
        the development one."""
        return replace(self, username=username, password=password or development_password(username))


def connection(common: CommonSettings, principal: str) -> KafkaConnection:
    """The connection of a process whose own principal is `principal`, unless the settings name another."""
    username = common.kafka_username or principal
    return KafkaConnection(
        bootstrap=common.kafka_bootstrap,
        username=username,
        password=common.kafka_password.get_secret_value() or development_password(username),
        security_protocol=common.kafka_security_protocol,
        ca_file=common.kafka_ca_file or None,
        instance=common.instance or None,
        session_timeout_ms=common.kafka_session_timeout_ms,
        handler_max_s=common.consumer_handler_max_s,
    )


def main() -> None:
    """`python -m streams.connection <principal>` prints a principal's development password."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="print a Kafka principal's development password")
    parser.add_argument("principal", help="e.g. ingest, or an institution's id")
    sys.stdout.write(development_password(parser.parse_args().principal) + "\n")


if __name__ == "__main__":
    main()
