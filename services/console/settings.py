"""Settings of the console (env prefix `STOPLINE_CONSOLE_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Environment, Settings, refuse_development_secrets

DEV_SESSION_KEY = "ZGV2LW9ubHktY29uc29sZS1zZXNzaW9uLWtleS0wMDA="  # 32 bytes, base64; refused in production


class ConsoleSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_CONSOLE_")

    host: str = Field("127.0.0.1", description="address the console listens on")
    port: int = Field(8008, description="port of the console")
    coordination_url: str = Field(
        "http://127.0.0.1:8003", description="the coordination API it works through"
    )
    notifier_url: str = Field("http://127.0.0.1:8004", description="the notifier API (warnings, answers)")
    session_key: str = Field(
        DEV_SESSION_KEY, description="base64 AES-256 key sealing the session cookie (it holds the credential)"
    )
    session_ttl_s: float = Field(
        8 * 3600.0,
        gt=0,
        le=24 * 3600.0,
        description="a session ends this long after sign-in (at most a day, as coordination keeps it)",
    )
    idle_ttl_s: float = Field(30 * 60.0, gt=0, description="a session unused this long ends")
    secure_cookies: bool = Field(False, description="mark cookies Secure (set behind HTTPS)")
    dev_sign_in: bool = Field(
        True,
        description="officers sign in through the local token issuer (development and tests; refused in "
        "production, where the OIDC provider signs officers in)",
    )
    public_url: str = Field(
        "http://127.0.0.1:8008", description="the console's address as browsers reach it (OIDC redirects)"
    )
    oidc_issuer: str = Field(
        "", description="production: the OIDC provider officers sign in with (its issuer URL); empty: none"
    )
    oidc_client_id: str = Field(
        "stopline-console", description="the console's client id at the OIDC provider"
    )
    oidc_client_secret: str = Field("", description="the console's client secret at the OIDC provider")
    api_timeout_s: float = Field(5.0, gt=0, description="timeout of one call to a Stopline API")
    live_interval_s: float = Field(1.0, gt=0, description="how often live pages look for changes")
    live_per_session: int = Field(
        8, ge=1, description="live streams one session may have open at once (more: 429)"
    )
    live_per_address: int = Field(
        64, ge=1, description="live streams one client address may have open at once (more: 429)"
    )
    language: str = Field("zh", pattern="^(zh|en)$", description="language of a person who chose none")

    def check_production(self, environment: Environment) -> None:
        refuse_development_secrets(
            environment, {"STOPLINE_CONSOLE_SESSION_KEY": (self.session_key, DEV_SESSION_KEY)}
        )
        if environment != Environment.PRODUCTION:
            return
        if self.dev_sign_in:
            raise ValueError("STOPLINE_CONSOLE_DEV_SIGN_IN must be false in production")
        if not self.oidc_issuer or not self.oidc_client_secret:
            raise ValueError(
                "STOPLINE_CONSOLE_OIDC_ISSUER and STOPLINE_CONSOLE_OIDC_CLIENT_SECRET must be set in "
                "production: officers sign in through the OIDC provider"
            )
        if not self.secure_cookies:
            raise ValueError("STOPLINE_CONSOLE_SECURE_COOKIES must be true in production")
