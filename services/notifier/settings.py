"""Settings of the notifier (env prefix `STOPLINE_NOTIFIER_`).

Periods are settings so that tests can shorten them to seconds and a deployment can follow its desk's
practice. Secrets have development defaults that are refused in production.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.sealing import Sealer
from services.kit.settings import Environment, Settings, refuse_development_secrets

DEV_SMS_SECRET = "dev-only-sms-gateway-secret"  # noqa: S105 - refused in production
DEV_PUSH_SECRET = "dev-only-push-provider-secret"  # noqa: S105 - refused in production
DEV_PAYLOAD_KEY = "ZGV2LW9ubHktcGF5bG9hZC1rZXktY2hhbmdlLW1lLTA="  # 32 bytes, base64; refused in production


class NotifierSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_NOTIFIER_")

    host: str = Field("127.0.0.1", description="address the notifier API listens on")
    port: int = Field(8004, description="port of the notifier API (receipts, answers, phone desk)")
    public_url: str = Field(
        "http://127.0.0.1:8004", description="base URL citizens and gateways reach the notifier API at"
    )
    consume: bool = Field(True, description="run the alerts consumer, delivery worker and escalation job")

    sms_url: str = Field("", description="SMS gateway endpoint; empty: no SMS channel")
    sms_secret: str = Field(DEV_SMS_SECRET, description="HMAC secret shared with the SMS gateway")
    push_url: str = Field("", description="app-push provider endpoint; empty: no push channel")
    push_secret: str = Field(DEV_PUSH_SECRET, description="HMAC secret shared with the push provider")
    payload_key: str = Field(
        DEV_PAYLOAD_KEY, description="base64 AES-256 key sealing queued message bodies (they hold the link)"
    )
    payload_key_previous: str = Field(
        "",
        description="the STOPLINE_NOTIFIER_PAYLOAD_KEY being rotated out: messages it sealed, still queued, "
        "open until sent or dead",
    )

    send_timeout_s: float = Field(2.0, gt=0, description="timeout of one call to a gateway")
    max_attempts: int = Field(5, ge=1, description="attempts per channel before the message is dead")
    backoff_s: float = Field(0.5, gt=0, description="first retry delay; doubles each attempt")
    backoff_max_s: float = Field(60.0, gt=0, description="longest delay between two attempts")
    worker_batch: int = Field(200, ge=1, description="most messages one delivery round sends")
    worker_poll_s: float = Field(0.5, gt=0, description="delivery poll interval when nothing wakes it")
    receipt_tolerance_s: float = Field(300.0, gt=0, description="accepted clock skew of signed receipts")

    token_ttl_s: float = Field(24 * 3600.0, gt=0, description="how long the answer link is valid")
    rate_limit_s: float = Field(
        1800.0,
        ge=0,
        description=(
            "at most one open warning per person in this period; later alerts join it until it is "
            "answered or closed"
        ),
    )
    desk_score: float = Field(0.9, ge=0, le=1, description="score from which the phone desk calls at once")
    answer_timeout_s: float = Field(
        600.0, gt=0, description="a warning not answered in this time goes to the phone desk"
    )
    escalation_interval_s: float = Field(1.0, gt=0, description="how often the escalation job runs")
    case_unit: str = Field(
        "changji-anti-fraud-centre", description="police unit that owns cases opened from citizens' answers"
    )
    default_language: str = Field("zh", pattern="^(zh|ug|kk)$", description="language when none is known")

    def payload_sealer(self) -> Sealer:
        """Seals queued message bodies under the payload key; opens them under it or the previous one."""
        return Sealer(self.payload_key, previous=[self.payload_key_previous])

    def check_production_secrets(self, environment: Environment) -> None:
        refuse_development_secrets(
            environment,
            {
                "STOPLINE_NOTIFIER_SMS_SECRET": (self.sms_secret, DEV_SMS_SECRET),
                "STOPLINE_NOTIFIER_PUSH_SECRET": (self.push_secret, DEV_PUSH_SECRET),
                "STOPLINE_NOTIFIER_PAYLOAD_KEY": (self.payload_key, DEV_PAYLOAD_KEY),
            },
        )
        if environment == Environment.PRODUCTION and not (self.sms_url or self.push_url):
            # Started without a channel, every warning would go to the phone desk as undelivered.
            raise ValueError(
                "STOPLINE_NOTIFIER_SMS_URL or STOPLINE_NOTIFIER_PUSH_URL must be set in production"
            )
