"""Settings of the ingest API (env prefix `STOPLINE_INGEST_`)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Settings


class IngestSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_INGEST_")

    host: str = Field("127.0.0.1", description="address the ingest API listens on")
    port: int = Field(8001, description="port of the ingest API")
    max_batch_events: int = Field(1000, ge=1, description="most events in one posted batch")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="largest accepted request body")
    dedup_retention_days: int = Field(
        7, ge=1, description="how long event ids are remembered for de-duplication"
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
