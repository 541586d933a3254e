"""A real webhook receiver for tests: a small HTTP/1.1 server on 127.0.0.1 that checks signatures and
de-duplicates by Idempotency-Key, recording every raw delivery."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import orjson

from deploy.local.common import free_port
from services.coordination.delivery import signing


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    raw: list[str] = field(default_factory=list)  # message id of every delivery, repeats included
    processed: dict[str, dict[str, object]] = field(default_factory=dict)
    bad_signatures: int = 0
    trickle_s: float = 0.0  # take the message, then send the answer's body a byte at a time this far apart
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stopline"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                lowered = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(lowered.get("content-length", "0")))
                status = self._handle(headers, body)
                if not self.trickle_s:
                    writer.write(f"HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n".encode())
                    await writer.drain()
                    continue
                writer.write(f"HTTP/1.1 {status} OK\r\ncontent-length: 10\r\n\r\n".encode())
                for _ in range(10):
                    await asyncio.sleep(self.trickle_s)
                    writer.write(b" ")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        if not signing.verify(self.secret, headers, body):
            self.bad_signatures += 1
            return 401
        key = {k.lower(): v for k, v in headers.items()}[signing.IDEMPOTENCY_KEY.lower()]
        self.raw.append(key)
        self.processed.setdefault(key, orjson.loads(body))  # a repeat is acknowledged, not redone
        return 200
