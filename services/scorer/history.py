"""Since when a stage's partition state holds history, for the warm-up gate: a state younger than the
feature windows sees every caller and payee as new."""

from __future__ import annotations

from collections.abc import Iterable

REORDER_S = 3600.0  # how far out of order events may come and still count as the state's history


def watching_since(since: float | None, first_seen: Iterable[float | None], at: float) -> float:
    """`since` as it was (None: not yet known for this partition), moved by an event at `at`. Unknown, it
    starts at the oldest first-seen of the restored state (a snapshot keeps its history), else at `at`;
    an older event that comes later lowers it only within REORDER_S (events come a little out of order;
    one payment a bank sends a day late does not make a day of history)."""
    if since is None:
        since = min((f for f in first_seen if f is not None), default=at)
    if at >= since - REORDER_S:
        since = min(since, at)
    return since
