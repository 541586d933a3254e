"""Prometheus metrics of the blocklist."""

from prometheus_client import Counter, Gauge

CHANGES = Counter(
    "stopline_blocklist_changes_total",
    "proposed, reported, approved, rejected, expired, removed, appealed",
    ["change"],
)
PUBLISHED = Counter("stopline_blocklist_published_total", "changes published to the Kafka feed")
VERSION = Gauge("stopline_blocklist_version", "newest version published to the Kafka feed")
