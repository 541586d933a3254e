"""A write to a Kafka connection that the loop has already closed is a connection error, on uvloop too.

aiokafka takes a failed write for a broken connection (closes it, raises `KafkaConnectionError`, which its
callers retry) only when the write raises `OSError`: asyncio's own loop drops such a write, but uvloop (the
services' loop: uvicorn picks it, for its speed) raises `RuntimeError` ("the handler is closed") when the
broker has just closed the connection and aiokafka has not seen it yet. The consumer's group task then hands
that error to the poller and the consumer is lost: aio-libs/aiokafka#1038, open; a liveness restart of
coordination or ingest in fault runs D, E and F. The two writing methods are wrapped here to do what they do
for `OSError`. `tests/kit/test_event_loop.py` shows the error on each loop (`send`; `_send_sasl_token`
writes the same way during a connection's authentication). Applied once, by `streams/__init__.py`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError


def _as_connection_error(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def wrapped(self: AIOKafkaConnection, *args: Any, **kwargs: Any) -> Any:
        try:
            return write(self, *args, **kwargs)
        except RuntimeError as exc:
            # Only uvloop's own error on a transport it closed: aiokafka's errors are RuntimeErrors too, and
            # so is a request no broker version takes (NotImplementedError), which must not pass for an
            # outage.
            writer = self._writer
            closed = writer is not None and writer.transport.is_closing()
            if type(exc) is not RuntimeError or not closed:
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN)
            raise KafkaConnectionError(f"Connection at {self.host}:{self.port} broken: {exc}") from exc

    wrapped.__stopline_wrapped__ = True  # type: ignore[attr-defined]
    return wrapped


def apply() -> None:
    for name in ("send", "_send_sasl_token"):
        method = getattr(AIOKafkaConnection, name)
        if not getattr(method, "__stopline_wrapped__", False):
            setattr(AIOKafkaConnection, name, _as_connection_error(method))
