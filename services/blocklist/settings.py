"""Settings of the blocklist service (env prefix `STOPLINE_BLOCKLIST_`)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Settings


class BlocklistSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_BLOCKLIST_")

    host: str = Field("127.0.0.1", description="address the blocklist API listens on")
    port: int = Field(8005, description="port of the blocklist API")
    entry_ttl_s: float = Field(
        180 * 24 * 3600.0,
        gt=0,
        description="a listed number or account is blocked this long from its approval or renewal",
    )
    background: bool = Field(
        True,
        description="run the feed publisher, the expiry job and the fraud-receivers consumer in the API",
    )
    expiry_interval_s: float = Field(5.0, gt=0, description="how often expired entries are taken off")
    publish_poll_s: float = Field(1.0, gt=0, description="feed poll interval when no change wakes it")
    sync_page: int = Field(1000, ge=1, le=10_000, description="most entries in one sync response")
