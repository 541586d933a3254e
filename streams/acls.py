"""The Kafka principals: one per service, one per institution, and the administrator."""

from __future__ import annotations

from streams.admin import admin_client
from streams.connection import KafkaConnection, development_password
from streams.credentials import upsert_users

ADMIN = "stopline-admin"  # super user: the stack and operators' tools (topics, principals, ACLs)
BROKER = "stopline-broker"  # the brokers' own principal, between brokers and towards the controllers
INGEST = "stopline-ingest"
SCORER = "stopline-scorer"
COORDINATION = "stopline-coordination"
NOTIFIER = "stopline-notifier"
BLOCKLIST = "stopline-blocklist"
BANKSIM = "stopline-banksim"  # the simulated banks' shortcut: they learn balances from the event topics
SIMULATOR = "stopline-simulator"
SERVICES = (INGEST, SCORER, COORDINATION, NOTIFIER, BLOCKLIST, BANKSIM, SIMULATOR)


async def ensure_service_principals(admin: KafkaConnection) -> None:
    """Create every service's principal with its development password (the local stack only)."""
    async with admin_client(admin) as client:
        await upsert_users(client, {p: development_password(p) for p in SERVICES})
