"""The HTTP side of the channels: one signed POST per attempt, bounded by a timeout."""

from __future__ import annotations

import asyncio
import time

import httpx

from services.notifier import signing
from services.notifier.settings import NotifierSettings


class Channels:
    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.targets = {
            "sms": (settings.sms_url, settings.sms_secret),
            "push": (settings.push_url, settings.push_secret),
        }
        self.send_timeout_s = settings.send_timeout_s
        self.timeout = httpx.Timeout(settings.send_timeout_s)

    def secret(self, channel: str) -> str:
        return self.targets[channel][1]

    async def post(
        self, channel: str, *, message_id: str, body: bytes
    ) -> tuple[bool, int | None, str | None]:
        """Send once; (accepted, HTTP status, error). Never raises for network trouble: that is a result."""
        url, secret = self.targets[channel]
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message_id,
            **signing.headers(secret, int(time.time()), body),
        }
        try:
            # httpx's timeout bounds each step (connect, write, every read), not the whole send: a gateway
            # answering a byte at a time would outlast the worker's lease, and another worker send it again.
            async with asyncio.timeout(self.send_timeout_s):
                response = await self.client.post(url, content=body, headers=headers, timeout=self.timeout)
        except TimeoutError:
            return False, None, f"Timeout: no answer within {self.send_timeout_s} s"
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return True, response.status_code, None
        # Not the gateway's body: gateways echo the destination number, and the error is stored and logged.
        return False, response.status_code, f"HTTP {response.status_code}"
