"""Officers sign in through an OpenID Connect provider (production's way), here a small stand-in
provider with its own RSA key: the console sends the officer there with PKCE, checks the ID token it
gets back, and works the APIs with the access token, which the coordination API verifies with the
provider's public key. A token the console did not ask for is refused."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from playwright.async_api import Browser, async_playwright, expect

from services.coordination.settings import CoordinationSettings
from tests.conftest import Infra
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, UNIT, serving, shot
from tests.coordination.conftest import FAST

pytestmark = pytest.mark.integration
CLIENT = "stopline-console"


class StandIn:
    """An OIDC provider that signs in whoever it is told to (`who`), remembering what the console sent."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = ""
        self.who: dict[str, str] = {"sub": "officer-oidc", "role": "operator", "unit": UNIT}
        self.codes: dict[str, dict[str, Any]] = {}

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        return jwt.encode(
            {"iss": self.url, "iat": now, "exp": now + 600, **claims}, self.key, "RS256", {"kid": "k1"}
        )

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, str]:
            return {
                "issuer": self.url,
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "jwks_uri": self.url + "/jwks",
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            key = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [{**key, "kid": "k1", "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["client_id"] == CLIENT and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q["nonce"],
                "challenge": q["code_challenge"],
                "redirect": q["redirect_uri"],
            }
            return RedirectResponse(
                f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302
            )

        @app.post("/token")
        async def token(
            code: str = Form(), code_verifier: str = Form(), redirect_uri: str = Form()
        ) -> dict[str, Any]:
            sent = self.codes.pop(code)
            digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
            assert digest.decode() == sent["challenge"] and redirect_uri == sent["redirect"]
            return {
                "token_type": "Bearer",
                "expires_in": 600,
                "id_token": self.sign({**self.who, "aud": CLIENT, "nonce": sent["nonce"]}),
                "access_token": self.sign({**self.who, "aud": "stopline"}),
            }

        return app


@pytest.fixture(scope="module")
async def oidc_site(
    infra: Infra, monkeypatch_module: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, StandIn, Browser]]:
    from services.console.app import build as build_console
    from services.console.settings import ConsoleSettings
    from services.coordination.app import build as build_coordination

    provider = StandIn()
    async with serving(provider.app()) as provider_url:
        provider.url = provider_url
        # The coordination API verifies the provider's tokens, as in production.
        monkeypatch_module.setenv("STOPLINE_JWT_PUBLIC_KEY", provider.public_pem())
        monkeypatch_module.setenv("STOPLINE_JWT_ISSUER", provider_url)
        coordination_app = build_coordination(infra.common, CoordinationSettings(**FAST, consume=False))
        async with serving(coordination_app) as coordination:
            settings = ConsoleSettings(
                coordination_url=coordination,
                dev_sign_in=False,
                oidc_issuer=provider_url,
                oidc_client_id=CLIENT,
                oidc_client_secret="stand-in-secret",  # noqa: S106 - the stand-in provider's
            )
            console_app = build_console(infra.common, settings)
            async with serving(console_app) as console, async_playwright() as pw:
                settings.public_url = console  # known once it serves: where the provider sends people back
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    yield console, provider, browser
                finally:
                    await browser.close()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


async def test_an_officer_signs_in_through_the_provider(oidc_site: tuple[str, StandIn, Browser]):
    console, provider, browser = oidc_site
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await page.goto(console + "/cases")
    await expect(page.locator("#officer-signin")).to_have_count(0)  # no local issuer here
    await shot(page, "signin-oidc")
    await page.get_by_test_id("oidc").click()
    await expect(page).to_have_url(console + "/cases")  # back where they were going, signed in
    await expect(page.get_by_test_id("who")).to_contain_text("officer-oidc")
    await expect(page.get_by_role("heading", level=1)).to_have_text("案件")  # the API took the token
    await context.close()


async def test_a_return_the_console_did_not_start_is_refused(oidc_site: tuple[str, StandIn, Browser]):
    console, provider, browser = oidc_site
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    response = await page.goto(console + "/signin/oidc/callback?code=forged&state=forged")
    assert response is not None and response.status == 401
    await expect(page.get_by_test_id("signin-error")).to_contain_text("统一身份认证未能完成登录")
    await context.close()
