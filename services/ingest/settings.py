"""Settings of the ingest API (env prefix `STOPLINE_INGEST_`)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import CommonSettings, Settings


class IngestSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_INGEST_")

    host: str = Field("127.0.0.1", description="address the ingest API listens on")
    port: int = Field(8001, description="port of the ingest API")
    max_batch_events: int = Field(1000, ge=1, description="most events in one posted batch")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="largest accepted request body")
    dedup_retention_days: int = Field(
        8,
        ge=1,
        description="how long event ids are remembered for de-duplication; at least "
        "STOPLINE_EVENT_HISTORY_DAYS plus STOPLINE_EVENT_MAX_AHEAD_S, or ingest refuses to start",
    )
    credential_cache_s: float = Field(30.0, ge=0, description="how long a verified API key is cached")
    intake: bool = Field(
        True, description="forward the events institutions produce to their Kafka intake topics (in the API)"
    )
    answer_timeout_s: float = Field(
        10.0,
        gt=0,
        description="longest a posted batch waits for Kafka's acknowledgement; past it the answer is 503 "
        "in_doubt and a retry is told the outcome",
    )


def check_dedup_covers_history(common: CommonSettings, settings: IngestSettings) -> None:
    """Refuse a ledger that forgets an event id while the event is still accepted: one dated the allowance
    ahead is accepted until the history window has passed over it, so until `max_ahead + history` after it
    was received, while its id is forgotten `dedup_retention` after that; a retry after the id is gone
    would be accepted again, and sent to the scorer twice."""
    accepted_for_s = common.event_history_days * 86_400 + common.event_max_ahead_s
    if settings.dedup_retention_days * 86_400 < accepted_for_s:
        raise ValueError(
            f"STOPLINE_INGEST_DEDUP_RETENTION_DAYS ({settings.dedup_retention_days}) must cover "
            f"STOPLINE_EVENT_HISTORY_DAYS ({common.event_history_days:g}) plus STOPLINE_EVENT_MAX_AHEAD_S "
            f"({common.event_max_ahead_s:g} s), {accepted_for_s / 86_400:g} days: an event retried after "
            "its id is forgotten would be accepted again"
        )
