"""Operator sign-in from an OIDC issuer: tokens are verified with the keys of its JWKS, fetched from a real
local HTTP server that rotates its key; the new key is taken without a restart, the retired one refused,
and made-up key ids do not make Stopline fetch again and again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.blocklist.app import build as build_blocklist
from services.kit.auth import CLAIM_MAX, AuthSettings, TokenVerifier
from services.kit.errors import NotAuthenticated, Unavailable
from services.kit.settings import Environment
from tests.conftest import Infra

ISSUER, AUDIENCE = "https://idp.example", "stopline"


class Issuer:
    """An identity provider's JWKS endpoint on a free local port, whose keys the test changes."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.hits = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server interface
                issuer.hits += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def rotate(self, kid: str) -> None:
        """Publish only a new key."""
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, private in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            keys.append(jwk | {"kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(
        self,
        kid: str,
        private: rsa.RSAPrivateKey | None = None,
        role: str = "operator",
        sub: str = "officer-7",
        unit: str = "changji-psb",
    ) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": sub,
            "role": role,
            "unit": unit,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + timedelta(minutes=10),
        }
        return jwt.encode(claims, private or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@contextlib.contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()
        thread.join(timeout=5)


def _settings(url: str, **extra: Any) -> AuthSettings:
    return AuthSettings(jwks_url=url, issuer=ISSUER, audience=AUDIENCE, **extra)


def _forged_es256(kid: str) -> str:
    """A token whose header names the issuer's RSA key id and ES256, signed by a stranger's EC key."""
    claims = {"sub": "x", "role": "operator", "unit": "u", "iss": ISSUER, "aud": AUDIENCE}
    exp = datetime.now(UTC) + timedelta(minutes=1)
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims | {"exp": exp}, stranger, algorithm="ES256", headers={"kid": kid})


async def test_a_rotated_key_is_taken_without_a_restart_and_the_old_one_refused():
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(
            _settings(issuer.url, jwks_min_refresh_s=0), environment=Environment.PRODUCTION
        )
        first = issuer.token("k1")
        assert (await verifier.verify(first)).subject == "officer-7"
        assert issuer.hits == 1
        assert (await verifier.verify(issuer.token("k1"))).role == "operator"
        assert issuer.hits == 1  # cached

        retired = issuer.keys["k1"]
        issuer.rotate("k2")
        assert (await verifier.verify(issuer.token("k2"))).unit == "changji-psb"  # unknown kid: fetched
        assert issuer.hits == 2
        with pytest.raises(NotAuthenticated):  # signed by the retired key, naming a kid no longer published
            await verifier.verify(issuer.token("k1", retired))
        with pytest.raises(NotAuthenticated):  # a forged token naming the current kid
            await verifier.verify(issuer.token("k2", retired))


async def test_a_subject_or_unit_too_long_to_name_an_actor_is_refused():
    """They name who acted in the audit trail (120 characters with a prefix): refused at sign-in, not by
    the write they would sign."""
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(_settings(issuer.url), environment=Environment.PRODUCTION)
        assert (await verifier.verify(issuer.token("k1", sub="o" * CLAIM_MAX))).subject == "o" * CLAIM_MAX
        for token in (
            issuer.token("k1", sub="o" * (CLAIM_MAX + 1)),
            issuer.token("k1", unit="u" * (CLAIM_MAX + 1)),
        ):
            with pytest.raises(NotAuthenticated, match="at most"):
                await verifier.verify(token)


async def test_a_subject_or_unit_with_a_control_character_is_refused():
    """A NUL (which PostgreSQL cannot store: the write it signed answered 500), a line break or a
    bidirectional override is no one's name: refused at sign-in. Other scripts' letters and spaces are."""
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(_settings(issuer.url), environment=Environment.PRODUCTION)
        named = await verifier.verify(issuer.token("k1", sub="王 警官", unit="昌吉 psb"))
        assert (named.subject, named.unit) == ("王 警官", "昌吉 psb")
        for bad in ("nul\u0000guy", "two\nlines", "evil\u202egpj", "tab\there"):
            for token in (issuer.token("k1", sub=bad), issuer.token("k1", unit=bad)):
                with pytest.raises(NotAuthenticated, match="printable"):
                    await verifier.verify(token)


async def test_unknown_key_ids_fetch_at_most_once_per_refresh_interval():
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(
            _settings(issuer.url, jwks_min_refresh_s=3600), environment=Environment.PRODUCTION
        )
        await verifier.verify(issuer.token("k1"))
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for i in range(20):
            with pytest.raises(NotAuthenticated):
                await verifier.verify(issuer.token(f"made-up-{i}", stranger))
        assert issuer.hits == 1


async def test_a_token_choosing_another_algorithm_than_its_keys_is_refused():
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(_settings(issuer.url), environment=Environment.PRODUCTION)
        with pytest.raises(NotAuthenticated, match="alg"):
            await verifier.verify(_forged_es256("k1"))
        pem = (
            issuer.keys["k1"]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        static = TokenVerifier(
            AuthSettings(public_key=pem.decode(), issuer=ISSUER, audience=AUDIENCE),
            environment=Environment.PRODUCTION,
        )
        assert (await static.verify(issuer.token("k1"))).subject == "officer-7"
        with pytest.raises(NotAuthenticated, match="alg"):
            await static.verify(_forged_es256("k1"))


async def test_a_new_key_id_while_the_issuer_is_down_is_a_503():
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(
            _settings(issuer.url, jwks_min_refresh_s=0, jwks_timeout_s=1), environment=Environment.PRODUCTION
        )
        known = issuer.token("k1")
        await verifier.verify(known)
        issuer.rotate("k2")
        rotated = issuer.token("k2")
    with pytest.raises(Unavailable):  # the issuer is gone: it may well publish k2
        await verifier.verify(rotated)
    assert (await verifier.verify(known)).subject == "officer-7"  # the cached key goes on working


async def test_an_unreachable_issuer_is_a_503_not_a_hang():
    with running_issuer() as issuer:
        url = issuer.url
    verifier = TokenVerifier(_settings(url, jwks_timeout_s=1), environment=Environment.PRODUCTION)
    with pytest.raises(Unavailable):
        await verifier.verify(jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k1"}))


@pytest.mark.integration
async def test_an_operator_route_takes_the_issuers_tokens(infra: Infra, monkeypatch: pytest.MonkeyPatch):
    with running_issuer() as issuer:
        issuer.rotate("k1")
        for name, value in (("JWKS_URL", issuer.url), ("ISSUER", ISSUER), ("AUDIENCE", AUDIENCE)):
            monkeypatch.setenv(f"STOPLINE_JWT_{name}", value)
        app = build_blocklist(infra.common)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://blocklist") as client:
            signed_in = {"Authorization": f"Bearer {issuer.token('k1')}"}
            assert (await client.get("/v1/blocklist/entries", headers=signed_in)).status_code == 200
            developer = {"Authorization": f"Bearer {jwt.encode({'sub': 'x'}, 'k' * 32, algorithm='HS256')}"}
            assert (await client.get("/v1/blocklist/entries", headers=developer)).status_code == 401
            forged = {"Authorization": f"Bearer {_forged_es256('k1')}"}
            assert (await client.get("/v1/blocklist/entries", headers=forged)).status_code == 401


async def test_a_key_the_issuer_withdraws_is_refused_once_the_cached_set_is_older_than_its_max_age():
    with running_issuer() as issuer:
        issuer.rotate("k1")
        verifier = TokenVerifier(
            _settings(issuer.url, jwks_min_refresh_s=3600, jwks_max_age_s=0.05),
            environment=Environment.PRODUCTION,
        )
        withdrawn = issuer.token("k1")
        assert (await verifier.verify(withdrawn)).subject == "officer-7"
        issuer.rotate("k2")  # the issuer withdraws the key (compromised) for a new one
        await asyncio.sleep(0.1)  # the cached set is now older than its max age
        with pytest.raises(NotAuthenticated, match="does not publish"):
            await verifier.verify(withdrawn)
        assert issuer.hits == 2
