"""Settings of the coordination service (env prefix `STOPLINE_COORDINATION_`).

The policy periods of the workflows (stop-payment lapse, freeze duration, deadlines) are settings,
so a prefecture can follow its own rules and tests can shorten them to seconds.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Settings

HOUR = 3600.0
DAY = 24 * HOUR

# Acknowledge within minutes: money moves on within minutes. Execution deadlines are longer for
# formal measures (a freeze needs the bank's legal desk).
DEFAULT_ACK_S = {
    "query": 600.0,
    "stop_payment": 300.0,
    "freeze": 1800.0,
    "extend": 1800.0,
    "release": 1800.0,
    "return_funds": 3600.0,
}
DEFAULT_EXEC_S = {
    "query": 1800.0,
    "stop_payment": 900.0,
    "freeze": 4 * HOUR,
    "extend": 4 * HOUR,
    "release": 4 * HOUR,
    "return_funds": 2 * DAY,
}


class CoordinationSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_COORDINATION_")

    host: str = Field(
        "127.0.0.1",
        description="address the coordination API (and the worker's /metrics and /health) listens on",
    )
    port: int = Field(8003, description="port of the coordination API")
    worker_port: int = Field(
        8013,
        description="port of the coordination worker's (services.coordination.worker) /metrics and /health",
    )
    consume: bool = Field(True, description="run the alerts and institution-response consumers in the API")
    relay: bool = Field(True, description="run the outbox relay (Kafka and webhooks) in the API process")
    scheduler: bool = Field(True, description="run the deadline and expiry jobs in the API process")

    stop_payment_period_s: float = Field(48 * HOUR, gt=0, description="a stop-payment lapses after this")
    stop_payment_max_renewals: int = Field(1, ge=0, description="how often a stop-payment may be extended")
    freeze_period_s: float = Field(182 * DAY, gt=0, description="a freeze lasts this long (about 6 months)")
    freeze_max_renewals: int = Field(-1, ge=-1, description="how often a freeze may be renewed; -1: no limit")
    ack_deadline_s: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_ACK_S),
        description='JSON, per instruction kind: seconds to acknowledge, e.g. {"stop_payment": 300}',
    )
    exec_deadline_s: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EXEC_S),
        description="JSON, per instruction kind: seconds to execute",
    )

    follow_threshold: Decimal = Field(
        Decimal("1000.00"),
        ge=0,
        description="transfers on from this amount are proposed for a stop, up to what the account received",
    )
    follow_max_depth: int = Field(5, ge=1, description="how many layers of next-hop accounts are proposed")

    scheduler_interval_s: float = Field(1.0, gt=0, description="how often deadline and expiry jobs run")
    institution_session_ttl_s: float = Field(
        8 * HOUR, gt=0, description="an institution user's sign-in lasts this long"
    )
    dashboard_interval_s: float = Field(
        15.0, gt=0, description="how often the day's figures and the outbox backlog (metrics) refresh"
    )
    audit_verify_interval_s: float = Field(
        3600.0,
        gt=0,
        description="how often the whole audit chain is walked from its first row (metrics "
        "stopline_audit_chain_ok, stopline_audit_verified_timestamp_seconds); each instance running the "
        "scheduler does it",
    )
    audit_tail_interval_s: float = Field(
        60.0,
        gt=0,
        description="how often the audit rows appended since the last verification are verified from where "
        "it ended (the audit page verifies only the rows after that)",
    )
    relay_poll_s: float = Field(1.0, gt=0, description="relay poll interval when no NOTIFY wakes it")
    relay_lease_s: float = Field(
        30.0,
        gt=0,
        description="a Kafka message being published is its relay's for this long (renewed while Kafka has "
        "not answered), and its transaction's timeout; past it, another relay fences the first one's "
        "producer, reads the topic back and publishes a message not found there",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="timeout of one webhook call")
    webhook_max_attempts: int = Field(8, ge=1, description="webhook attempts before the message is dead")
    webhook_backoff_s: float = Field(1.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_backoff_max_s: float = Field(300.0, gt=0, description="longest delay between two attempts")
    outbox_retention_days: int = Field(
        90,
        ge=1,
        description="messages delivered or given up are removed from the outbox this long after they were "
        "queued (hourly); keep it past the answer topics' retention (30 days): a refused answer read again "
        "after its notice was removed is told again",
    )

    @field_validator("ack_deadline_s", "exec_deadline_s")
    @classmethod
    def _complete(cls, value: dict[str, float], info: object) -> dict[str, float]:
        # An override of one kind keeps the defaults of the others.
        name = getattr(info, "field_name", "")
        defaults = DEFAULT_ACK_S if name == "ack_deadline_s" else DEFAULT_EXEC_S
        unknown = set(value) - set(defaults)
        if unknown:
            raise ValueError(f"unknown instruction kinds: {sorted(unknown)}")
        return {**defaults, **value}
