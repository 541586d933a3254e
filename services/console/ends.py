"""Whether an officer's console session was ended elsewhere (signed out, revoked), as the coordination API
says. A positive answer is taken for `CHECK_S` by this console instance, so a page costs no extra call to
the API while it holds (at most one a session every `CHECK_S`), and an end holds on every instance within
`CHECK_S`; a live stream, which asks before each look at the APIs, is closed within it too."""

from __future__ import annotations

import time
from collections import OrderedDict

from prometheus_client import Counter

CHECK_S = 5.0
CHECKS = Counter(
    "stopline_console_session_checks_total",
    "officer sessions checked: open (asked), cached (open within CHECK_S), ended, unavailable (no answer)",
    ["outcome"],
)


class Checks:
    """The sessions this instance found open lately, each until `CHECK_S` after the API said so; at most
    `size` of them (the oldest answer is forgotten first, so it is asked again)."""

    def __init__(self, *, check_s: float = CHECK_S, size: int = 10_000) -> None:
        self.check_s = check_s
        self.size = size
        self.open_until: OrderedDict[str, float] = OrderedDict()

    def fresh(self, session_id: str) -> bool:
        until = self.open_until.get(session_id)
        if until is not None and time.monotonic() < until:
            return True
        self.open_until.pop(session_id, None)
        return False

    def opened(self, session_id: str) -> None:
        self.open_until.pop(session_id, None)
        self.open_until[session_id] = time.monotonic() + self.check_s
        while len(self.open_until) > self.size:
            self.open_until.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self.open_until.pop(session_id, None)
