"""Every Kafka client gets its connection options (bootstrap, SASL, TLS) from one place."""

from __future__ import annotations

import re
from pathlib import Path

from streams.connection import KafkaConnection, development_password

ROOT = Path(__file__).resolve().parents[2]
# Only these may read the bootstrap setting or write client options by hand.
OWNERS = {"streams/connection.py", "services/kit/settings.py", "deploy/local/kafka.py", "deploy/local/run.py"}
BY_HAND = re.compile(r"kafka_bootstrap|bootstrap_servers\s*=")


def test_no_client_is_made_with_hand_written_connection_options():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("services", "streams", "deploy", "models", "tests")
        for path in (ROOT / top).rglob("*.py")
        if str(path.relative_to(ROOT)) not in OWNERS and path.name != Path(__file__).name
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BY_HAND.search(line)
    ]
    assert offenders == [], (
        "make Kafka clients with streams.connection (KafkaConnection.options(), or infra.kafka in tests): "
        f"{offenders}"
    )


def test_options_authenticate_as_the_principal():
    options = KafkaConnection("k:1", "bank-a", development_password("bank-a")).options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "bank-a"
    assert options["sasl_plain_password"] == development_password("bank-a") != development_password("bank-b")
