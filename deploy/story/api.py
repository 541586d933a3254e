"""The public-API client of `deploy.story`: officers' calls, bounded waits, printing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from services.kit.tokens import issue

# An answered instruction is in one of these; the story decides which of them it can go on from.
ANSWERED = frozenset(
    {"executed", "partially_executed", "rejected", "account_not_found", "failed", "expired", "converted"}
)


class StoryFailed(Exception):
    """A step did not reach the state it should have, in time: the story stops here."""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def money(value: Any) -> str:
    return f"{Decimal(str(value or 0)):,.2f}"


def clock(value: datetime | str | float) -> str:
    """A moment as this machine's local time of day with its offset from UTC (a zone's abbreviation can
    name two zones): the API's times carry their offset, the gateway's are epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    at = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return at.astimezone().strftime("%H:%M:%S %z")


class Officers:
    """One HTTP client per officer of the same unit, all against the coordination API."""

    def __init__(self, url: str, unit: str, run: str) -> None:
        self.url = url.rstrip("/")
        self.clients: dict[str, httpx.Client] = {}
        for name, role in (
            ("operator", "operator"),
            ("supervisor", "supervisor"),
            ("approver", "supervisor"),
        ):
            token = issue(subject=f"story-{name}-{run}", role=role, unit=unit)
            self.clients[name] = httpx.Client(
                base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
            )

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    def call(self, who: str, method: str, path: str, *, expect: int = 200, **kw: Any) -> Any:
        try:
            r = self.clients[who].request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise StoryFailed(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if r.status_code != expect:
            raise StoryFailed(
                f"{method} {path} as {who}: HTTP {r.status_code} (wanted {expect}): {r.text[:400]}"
            )
        return r.json() if r.content else None

    def instruction(self, instruction_id: str) -> dict[str, Any]:
        return dict(self.call("operator", "GET", f"/v1/instructions/{instruction_id}"))

    def wait_for(
        self,
        instruction_id: str,
        wanted: frozenset[str],
        *,
        timeout_s: float,
        what: str,
        unanswered_ok: bool = False,
    ) -> dict[str, Any]:
        """Poll the instruction until its status is in `wanted` (or another final one); after the timeout
        fail, or with `unanswered_ok` give the instruction as it stands."""
        deadline = time.monotonic() + timeout_s
        row = self.instruction(instruction_id)
        while row["status"] not in wanted | ANSWERED:
            if time.monotonic() > deadline:
                if unanswered_ok:
                    return row
                raise StoryFailed(
                    f"{what} {instruction_id} is still {row['status']} after {timeout_s:.0f}s "
                    f"(wanted {'/'.join(sorted(wanted))}); {row['institution_id']} did not answer in time"
                )
            time.sleep(0.5)
            row = self.instruction(instruction_id)
        return row


def wait_until(check: Callable[[], Any], *, timeout_s: float, poll_s: float = 1.0) -> Any:
    """The first truthy result of `check` within the time, else None."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(poll_s)
