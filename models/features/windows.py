"""Sliding time windows with running count, sum and distinct counterparties, tolerant of late events.

Each window is bounded twice: by age (entries older than its span are dropped) and by count (at most
`cap` entries, the oldest dropped first), so an account receiving thousands of payments a day keeps a
fixed memory; its counts then saturate at the cap, which is still far above any threshold that matters.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CAP = 2000

PRUNE_EVERY_S = 60.0  # books are walked for expired entries at most once a minute of event time


def prune_due(before: float, newest: float) -> bool:
    """Whether an entity's newest event time moved into another minute: its books are pruned then, not
    on every event, because a merchant's or a switchboard number's books hold thousands of entries and
    walking them per event made its every event cost more as they grew."""
    return before // PRUNE_EVERY_S != newest // PRUNE_EVERY_S


# What every empty window points to: never changed (a window takes lists of its own on its first entry,
# and gives them back when its last one expires).
_NO_ENTRIES: list[Any] = []
_NO_KEYS: Counter[str] = Counter()


def _none() -> Any:
    return _NO_ENTRIES


def _no_keys() -> Counter[str]:
    return _NO_KEYS


@dataclass(slots=True)
class Window:
    # Lists, not deques: every person holds nine windows, mostly empty, and an empty deque takes a
    # 64-slot block (heap, forks and snapshots grow with it). Entries leave from the front in slices,
    # so the lists' O(n) front removal is paid once per expiry. And empty windows share their (empty)
    # books: three lists and a counter are most of a window's size, and most of a person's windows
    # are empty.
    span_s: float
    cap: int = DEFAULT_CAP
    times: list[float] = field(default_factory=_none)
    keys: list[str] = field(default_factory=_none)
    amounts: list[float] = field(default_factory=_none)
    total: float = 0.0
    distinct: Counter[str] = field(default_factory=_no_keys)
    newest: float = float("-inf")

    def __post_init__(self) -> None:
        if not self.times:  # e.g. decoded from a snapshot
            self._share()
        else:  # entries given, some books left to their defaults: those must be its own
            self._own()

    def _own(self) -> None:
        if self.times is _NO_ENTRIES:
            self.times = []
        if self.keys is _NO_ENTRIES:
            self.keys = []
        if self.amounts is _NO_ENTRIES:
            self.amounts = []
        if self.distinct is _NO_KEYS:
            self.distinct = Counter()

    def _share(self) -> None:
        self.times = self.keys = self.amounts = _NO_ENTRIES
        self.distinct = _NO_KEYS

    def add(self, at: float, key: str, amount: float) -> None:
        """Add an entry; a late one is put in time order, one older than the window is ignored."""
        if at < self.newest - self.span_s:
            return
        if not self.times:  # books of its own, never the shared empty ones (nor one list for three)
            self.times, self.keys, self.amounts, self.distinct = [], [], [], Counter()
        if at >= self.newest:
            self.times.append(at)
            self.keys.append(key)
            self.amounts.append(amount)
            self.newest = at
        else:
            # Late: rare, and near the end of a short list in practice.
            i = bisect.bisect_right(self.times, at)
            self.times.insert(i, at)
            self.keys.insert(i, key)
            self.amounts.insert(i, amount)
        self.total += amount
        self.distinct[key] += 1
        self._expire(self.newest)
        if len(self.times) > self.cap:
            self._drop(len(self.times) - self.cap)

    def _drop(self, n: int) -> None:
        """Remove the n oldest entries."""
        for key, amount in zip(self.keys[:n], self.amounts[:n], strict=True):
            self.total -= amount
            left = self.distinct[key] - 1
            if left:
                self.distinct[key] = left
            else:
                del self.distinct[key]
        del self.times[:n], self.keys[:n], self.amounts[:n]
        if not self.times:
            self._share()

    def _expire(self, now: float) -> None:
        if self.times and self.times[0] < now - self.span_s:
            self._drop(bisect.bisect_left(self.times, now - self.span_s))

    def stats(self, now: float) -> tuple[int, float, int]:
        """(count, sum, distinct keys) of the entries in [now - span, now].

        Entries after `now` (events that happened later but arrived earlier) are left out, so a feature
        describes what was known at the event's own time."""
        self._expire(max(self.newest, now))
        if not self.times or self.times[-1] <= now:
            return len(self.times), max(self.total, 0.0), len(self.distinct)
        # Rare: some entries are newer than `now`; count the earlier ones by hand.
        end = bisect.bisect_right(self.times, now)
        start = bisect.bisect_left(self.times, now - self.span_s)
        keys = set()
        total = 0.0
        for i in range(start, end):
            keys.add(self.keys[i])
            total += self.amounts[i]
        return end - start, total, len(keys)
