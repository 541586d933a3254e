"""Settings of the coordination service (env prefix `STOPLINE_COORDINATION_`)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoordinationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_COORDINATION_", extra="ignore")

    host: str = Field("127.0.0.1", description="address the coordination API listens on")
    port: int = Field(8003, description="port of the coordination API")
    consume: bool = Field(True, description="run the alerts consumer inside the API process")
