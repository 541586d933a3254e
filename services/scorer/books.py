"""One partition's entities (people or accounts), kept in the order they were last touched, so that those
silent longer than the horizon are found at the front: forgetting them costs what is forgotten, not a walk
over the whole state (which, at a few million entities, would hold the event loop for seconds)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, TypeVar


class Aging(Protocol):
    @property
    def last_seen(self) -> float: ...  # the newest event time of the entity


S = TypeVar("S", bound=Aging)


class Book(OrderedDict[str, S]):
    newest: float = 0.0  # the newest event time taken, in event time

    @classmethod
    def restored(cls, entries: dict[str, S]) -> Book[S]:
        """From a snapshot: the least recently seen first, as if touched in event-time order."""
        book = cls(sorted(entries.items(), key=lambda item: item[1].last_seen))
        if book:
            book.newest = next(reversed(book.values())).last_seen
        return book

    def touched(self, key: str, at: float) -> None:
        """The entity took an event at `at` (event time): it goes to the back."""
        self.move_to_end(key)
        self.newest = max(self.newest, at)

    def watermark(self, now: float) -> float:
        """The partition's clock: its newest event time, but never ahead of the wall clock `now`, so an
        event dated ahead (by up to the accepted skew) cannot make the partition forget early."""
        return min(self.newest, now)

    def forget_silent(self, horizon_s: float, *, now: float) -> int:
        """Drop entities silent for longer than the horizon before the watermark, from the front. An
        entity touched late by an old event sits behind newer ones and goes a little later: never early."""
        cutoff = self.watermark(now) - horizon_s
        forgotten = 0
        while self:
            key, state = next(iter(self.items()))
            if state.last_seen >= cutoff:
                break
            del self[key]
            forgotten += 1
        return forgotten
