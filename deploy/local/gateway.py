"""A local stand-in for the SMS gateway and the push provider, with simulated citizens:

    python -m deploy.local.gateway --port 8007 --answer-rate 0.5 --defrauded-rate 0.3

It checks each request's signature, records each message once (by message id), posts a signed
delivery receipt, and some of the simulated citizens open the link and answer. Tests run it on a
random port and make it slow or failing to exercise retries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from deploy.local.common import gateway_port
from services.kit.errors import NotAuthenticated
from services.kit.logging import log_fields
from services.notifier import signing

log = logging.getLogger(__name__)
LINK = re.compile(r"(https?://\S+)/a/([A-Za-z0-9_-]+)")


@dataclass
class Behaviour:
    """How the gateway behaves; tests change it while it runs."""

    delay_s: float = 0.0  # answer this late (a slow gateway)
    trickle_s: float = 0.0  # take the message, then send the answer's body a byte at a time this far apart
    fail_next: int = 0  # answer the next N requests with 503
    receipt: str | None = "delivered"  # receipt to send back; None: none
    receipt_delay_s: float = 0.05
    answer_rate: float = 0.0  # share of people who answer
    defrauded_rate: float = 0.0  # share of answers that are "defrauded"
    answer_delay_s: float = 0.5


@dataclass
class Received:
    channel: str
    message_id: str
    at: float  # wall clock, when the gateway took it
    payload: dict[str, Any]


@dataclass
class Receiver:
    sms_secret: str
    push_secret: str
    behaviour: Behaviour = field(default_factory=Behaviour)
    messages: dict[str, Received] = field(default_factory=dict)
    requests: int = 0
    answers: list[tuple[str, str, int]] = field(default_factory=list)  # token, answer, HTTP status
    # message id → the person's answer and its HTTP status, or None when they chose not to answer
    answer_of: dict[str, tuple[str, int] | None] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI(title="local SMS gateway and push provider")

        @app.post("/sms")
        async def sms(request: Request) -> Response:
            return await self._take("sms", self.sms_secret, request)

        @app.post("/push")
        async def push(request: Request) -> Response:
            return await self._take("push", self.push_secret, request)

        @app.get("/messages")
        async def listing(to: str | None = None) -> dict[str, Any]:
            """Counts; with `to`, also what that person received and whether they answered (demos)."""
            out: dict[str, Any] = {"count": len(self.messages), "answers": len(self.answers)}
            if to is not None:
                out["items"] = [self._view(m) for m in self.messages.values() if m.payload.get("to") == to]
            return out

        return app

    async def _take(self, channel: str, secret: str, request: Request) -> Response:
        self.requests += 1
        body = await request.body()
        if self.behaviour.delay_s:
            await asyncio.sleep(self.behaviour.delay_s)
        if self.behaviour.fail_next > 0:
            self.behaviour.fail_next -= 1
            return Response(status_code=503)
        try:
            signing.verify(
                secret,
                timestamp=request.headers.get(signing.TIMESTAMP),
                sig=request.headers.get(signing.SIGNATURE),
                body=body,
                now=time.time(),
                tolerance_s=300,
            )
        except NotAuthenticated:
            return Response(status_code=401)
        payload = orjson.loads(body)
        ident = str(payload["message_id"])
        if ident in self.messages:  # a retry of a message we already took: accept, do nothing twice
            return Response(status_code=202)
        self.messages[ident] = Received(channel, ident, time.time(), payload)
        self._spawn(self._follow_up(channel, secret, payload))
        if self.behaviour.trickle_s:
            return StreamingResponse(self._trickle(self.behaviour.trickle_s), status_code=202)
        return Response(status_code=202)

    @staticmethod
    async def _trickle(every_s: float) -> AsyncIterator[bytes]:
        for _ in range(10):
            await asyncio.sleep(every_s)
            yield b" "

    def _view(self, m: Received) -> dict[str, Any]:
        ident = m.message_id
        answered = self.answer_of.get(ident)
        return {
            "channel": m.channel,
            "message_id": ident,
            "at": m.at,
            "language": m.payload.get("language"),
            "text": m.payload.get("text") or m.payload.get("body"),
            # pending: the person has not decided yet; none: they chose not to answer
            "answer": answered[0] if answered else ("none" if ident in self.answer_of else "pending"),
            "answer_status": answered[1] if answered else None,
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_up(self, channel: str, secret: str, payload: dict[str, Any]) -> None:
        b = self.behaviour
        async with httpx.AsyncClient(timeout=5) as client:
            if b.receipt:
                await asyncio.sleep(b.receipt_delay_s)
                receipt = orjson.dumps({"message_id": payload["message_id"], "status": b.receipt})
                headers = {
                    "Content-Type": "application/json",
                    **signing.headers(secret, int(time.time()), receipt),
                }
                with contextlib.suppress(httpx.HTTPError):  # a lost receipt is what real gateways do too
                    await client.post(payload["receipt_url"], content=receipt, headers=headers)
            text = payload.get("text") or payload.get("answer_url") or ""
            match = LINK.search(text)
            if match is None or random.random() >= b.answer_rate:
                self.answer_of[str(payload["message_id"])] = None
                return
            await asyncio.sleep(b.answer_delay_s)
            answer = "defrauded" if random.random() < b.defrauded_rate else "safe"
            base, token = match.group(1), match.group(2)
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post(f"{base}/v1/answers/{token}", json={"answer": answer})
                self.answers.append((token, answer, r.status_code))
                self.answer_of[str(payload["message_id"])] = (answer, r.status_code)
                log.info("simulated citizen answered", extra=log_fields(answer=answer, status=r.status_code))


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a random port by default) for the block; yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def main() -> None:
    from services.kit.logging import configure_logging
    from services.notifier.settings import NotifierSettings

    parser = argparse.ArgumentParser(description="local SMS gateway / push provider with simulated citizens")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=gateway_port())
    parser.add_argument("--answer-rate", type=float, default=0.5)
    parser.add_argument("--defrauded-rate", type=float, default=0.3)
    args = parser.parse_args()
    configure_logging(service="notifier-receiver")
    settings = NotifierSettings()
    receiver = Receiver(
        settings.sms_secret,
        settings.push_secret,
        Behaviour(answer_rate=args.answer_rate, defrauded_rate=args.defrauded_rate, answer_delay_s=3.0),
    )
    uvicorn.run(receiver.app(), host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
