"""Prometheus counters of the simulator: what it sent, what failed, which scams it injected."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_SENT = Counter("stopline_simulator_events_sent_total", "events acknowledged by the sink", ["source"])
SEND_ERRORS = Counter("stopline_simulator_send_errors_total", "batches that failed, by reason", ["reason"])
SCAMS_INJECTED = Counter("stopline_simulator_scams_injected_total", "fraud scenarios started", ["typology"])
