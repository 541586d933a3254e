"""Prometheus metrics of the coordination service."""

from prometheus_client import Counter

ALERTS_RECEIVED = Counter("stopline_coordination_alerts_received_total", "alerts consumed", ["typology"])
ALERTS_STORED = Counter("stopline_coordination_alerts_stored_total", "alerts stored (not seen before)")
ALERTS_INVALID = Counter(
    "stopline_coordination_alerts_invalid_total", "alert messages that failed validation"
)
