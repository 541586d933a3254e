"""How many live streams are open, per session and per client address, in this console instance: each
stream polls the APIs through the one connection pool all pages share, so one person's hundred streams
would starve everyone else's pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class Slots:
    def __init__(self, *, per_session: int, per_address: int) -> None:
        self.per_session = per_session
        self.per_address = per_address
        self.open: Counter[tuple[str, str]] = Counter()  # (("session", key) | ("address", ip)) -> streams

    def take(self, session: str, address: str) -> Callable[[], None] | None:
        """A slot for one more stream, or None when either cap is reached; what it returns gives the slot
        back (once, however often it is called) when the stream ends."""
        keys = (("session", session), ("address", address))
        if self.open[keys[0]] >= self.per_session or self.open[keys[1]] >= self.per_address:
            return None
        self.open.update(keys)
        taken = True

        def release() -> None:
            nonlocal taken
            if taken:
                taken = False
                for key in keys:
                    self.open[key] -= 1
                    if self.open[key] <= 0:
                        del self.open[key]

        return release
