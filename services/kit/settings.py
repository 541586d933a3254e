"""Settings shared by every service; each service adds its own class with its own env prefix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.schemas.event_time import EventTimeBounds

DEFAULT_PSEUDONYM_KEY = "dev-only-pseudonym-key-change-me"
DEV_SECRETS_KEY = "ZGV2LW9ubHktc2VjcmV0cy1rZXktY2hhbmdlLW1lLTA="  # 32 bytes, base64; refused in production


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def refuse_development_secrets(environment: Environment, secrets: Mapping[str, tuple[str, str]]) -> None:
    """In production, refuse to start while any secret (env var name → (value, development default)) is
    empty or still its public development default."""
    if environment != Environment.PRODUCTION:
        return
    left = sorted(name for name, (value, default) in secrets.items() if not value or value == default)
    if left:
        raise ValueError(f"{', '.join(left)} must be set to secret values in production")


class Settings(BaseSettings):
    """What every settings class is: read from env vars named by its `env_prefix` + field (its own
    `model_config`, merged with this one). Values are stripped: a secret put in an env var from a file
    (`kubectl create secret --from-file`) keeps the file's last newline, which a password or key must not
    have (the Kafka setup job strips it: every login would be refused)."""

    model_config = SettingsConfigDict(extra="ignore", str_strip_whitespace=True)


class CommonSettings(Settings):
    """Connection and identity settings read by every service (env prefix `STOPLINE_`)."""

    model_config = SettingsConfigDict(env_prefix="STOPLINE_")

    environment: Environment = Field(
        Environment.DEVELOPMENT,
        description="development, test or production (any case); production refuses development secrets",
    )
    kafka_bootstrap: str = Field(
        default_factory=lambda: f"127.0.0.1:{os.environ.get('STOPLINE_KAFKA_PORT', '19092')}",
        description="Kafka bootstrap servers (default: the local stack's broker, port $STOPLINE_KAFKA_PORT)",
    )
    kafka_username: str = Field(
        "", description="Kafka principal (SCRAM-SHA-512 user); empty: the service's own (`streams.acls`)"
    )
    kafka_password: SecretStr = Field(
        SecretStr(""),
        description="password of the Kafka principal; empty: the local stack's development password "
        "(refused in production)",
    )
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT", "SSL"] = Field(
        "SASL_PLAINTEXT", description="how clients reach Kafka (SASL_SSL with a CA file in production)"
    )
    kafka_ca_file: str = Field("", description="CA certificate (PEM) the brokers' TLS certificates chain to")
    kafka_session_timeout_ms: int = Field(
        6_000,
        ge=1_000,
        description="a consumer that stops heart-beating (killed, frozen) loses its partitions after this",
    )
    consumer_handler_max_s: float = Field(
        60.0,
        gt=0,
        description="a consumer whose handler has not returned from a batch after this long is stuck: its "
        "service reports itself not live (its supervisor restarts it, and its partitions move) and counts it "
        "in stopline_consumer_stuck_total",
    )
    instance: str = Field(
        "",
        description="this process's stable name among its service's instances (e.g. ingest-1, a StatefulSet "
        "pod's name); its consumers are then static group members, so a restart within the session timeout "
        "takes its partitions back without a rebalance of the group",
    )
    topic_prefix: str = Field("", description="prefix of every topic name (isolates test runs)")
    database_url: str = Field(
        default_factory=lambda: (
            f"postgresql+asyncpg://stopline@127.0.0.1:{os.environ.get('STOPLINE_PG_PORT', '55432')}/stopline"
        ),
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL (default: the local stack's server, on port $STOPLINE_PG_PORT)",
    )
    pseudonym_key: str = Field(
        DEFAULT_PSEUDONYM_KEY,
        description="HMAC key that pseudonymises phone and account numbers in logs, and case numbers and "
        "transaction ids in feedback exports",
    )
    secrets_key: str = Field(
        DEV_SECRETS_KEY,
        description="base64 AES-256 key sealing the secrets kept in the database (institutions' webhook "
        "signing secrets)",
    )
    secrets_key_previous: str = Field(
        "",
        description="the STOPLINE_SECRETS_KEY being rotated out: what it sealed still opens until "
        "`python -m services.institutions.cli reseal` seals it under the current key",
    )
    log_level: str = Field("INFO", description="log level")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="addresses (comma-separated, CIDR allowed, `*` for any) of the proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed: the client address the rate limits key on",
    )
    event_max_ahead_s: float = Field(
        300.0,
        gt=0,
        description="an event dated further ahead of the clock is refused (posted: 422; produced to Kafka: a "
        "dead letter); so is an institution's answer, or one dated further before its instruction was issued",
    )
    event_history_days: float = Field(
        7.0, gt=0, description="an event older than this is refused, at ingest and in the scorer"
    )
    kafka_request_timeout_ms: int = Field(10_000, description="timeout of every Kafka request")

    @field_validator("environment", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        # `Production` and `PRODUCTION` are production; an unknown word refuses to start (enum check).
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        # Accept plain postgres URLs (as most tools print them) and use the async driver.
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value[len(plain) :]
        return value

    def event_time_bounds(self) -> EventTimeBounds:
        return EventTimeBounds(max_ahead_s=self.event_max_ahead_s, history_s=self.event_history_days * 86_400)

    def check_production_secrets(self, *, kafka: bool = True, sealing: bool = False) -> None:
        """Refuse development secrets in production (`kafka=False`: a process with no Kafka client;
        `sealing`: one that opens the secrets kept in the database, which only it is given)."""
        secrets = {"STOPLINE_PSEUDONYM_KEY": (self.pseudonym_key, DEFAULT_PSEUDONYM_KEY)}
        if sealing:
            secrets["STOPLINE_SECRETS_KEY"] = (self.secrets_key, DEV_SECRETS_KEY)
        if kafka and self.kafka_security_protocol.startswith("SASL_"):
            # Empty means the local stack's development password, derived from a public key.
            secrets["STOPLINE_KAFKA_PASSWORD"] = (self.kafka_password.get_secret_value(), "")
        refuse_development_secrets(self.environment, secrets)
