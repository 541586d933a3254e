"""Settings of the scorer (env prefix `STOPLINE_SCORER_`)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ScorerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_SCORER_", extra="ignore")

    host: str = Field("127.0.0.1", description="address of the scorer's /metrics and /health")
    port: int = Field(8002, description="port of the scorer's /metrics and /health")
    alert_threshold: float = Field(0.6, ge=0, le=1, description="score at or above which an alert is raised")
    warn_threshold: float = Field(0.6, ge=0, le=1, description="score from which the citizen is warned")
    police_threshold: float = Field(0.75, ge=0, le=1, description="score from which police are notified")
    stop_payment_threshold: float = Field(
        0.85, ge=0, le=1, description="score from which stop-payment is advised"
    )
    large_amount: float = Field(
        5000.0, gt=0, description="CNY from which a transfer after a suspicious call counts"
    )
    min_call_minutes: float = Field(
        5.0, ge=0, description="shortest call that counts as a possible scam call"
    )
    mule_min_payers: int = Field(
        5, ge=2, description="distinct payers in an hour that make an account suspect"
    )
    mule_min_payout_ratio: float = Field(
        0.5, ge=0, le=1, description="share paid out in the hour that confirms it"
    )
    state_horizon_hours: float = Field(
        24 * 7, gt=0, description="how long contacts and payees are remembered"
    )
    max_batch: int = Field(1000, ge=1, description="most records handled in one micro-batch")
