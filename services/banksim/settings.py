"""Settings of the institution simulator (env prefix `STOPLINE_BANKSIM_`)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Settings


class BanksimSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_BANKSIM_")

    kafka_institutions: list[str] = Field(
        default_factory=lambda: ["bank-a", "bank-b", "pay-a"], description="answer via Kafka (JSON list)"
    )
    webhook_institutions: list[str] = Field(
        default_factory=lambda: ["bank-c"], description="receive webhooks and answer via the API (JSON list)"
    )

    @property
    def institutions(self) -> list[str]:
        """Every institution the simulated banks answer for, on Kafka or by webhook."""
        return [*self.kafka_institutions, *self.webhook_institutions]

    coordination_url: str = Field("http://127.0.0.1:8003", description="coordination API, for API answers")
    webhook_host: str = Field("127.0.0.1", description="address of the simulated banks' webhook receiver")
    webhook_port: int = Field(8010, description="port of the simulated banks' webhook receiver")
    delay_min_s: float = Field(0.5, ge=0, description="shortest time a bank takes to answer")
    delay_max_s: float = Field(3.0, ge=0, description="longest time a bank takes to answer")
    reject_rate: float = Field(0.03, ge=0, le=1, description="share of instructions rejected")
    silent_rate: float = Field(0.02, ge=0, le=1, description="share never answered (tests escalation)")
    forward_after_s: float = Field(60.0, ge=0, description="unheld money moves on after this long")
    forward_share: Decimal = Field(Decimal("0.8"), gt=0, le=1, description="share of a balance moved on")
    max_layers: int = Field(3, ge=0, description="how many times money is moved on")
    learn_from_events: bool = Field(True, description="credit accounts from transfers on the event topics")
    seed: int | None = Field(None, description="random seed, for repeatable runs")
