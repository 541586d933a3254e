"""Prometheus metrics of the blocklist."""

from prometheus_client import Counter, Gauge

CHANGES = Counter(
    "stopline_blocklist_changes_total",
    "proposed, reported, approved, rejected, expired, removed, appealed",
    ["change"],
)
PUBLISHED = Counter("stopline_blocklist_published_total", "changes published to the Kafka feed")
VERSION = Gauge("stopline_blocklist_version", "newest version published to the Kafka feed")
FENCES = Counter(
    "stopline_blocklist_feed_fences_total",
    "times the feed started its producer again, fencing every other publisher: after a transaction of its "
    "own failed or was given up on (fenced by the other instance's start, refused, or timed out)",
)
