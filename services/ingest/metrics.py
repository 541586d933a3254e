"""Prometheus metrics of the ingest API."""

from prometheus_client import Counter

INGESTED = Counter("stopline_ingest_events_total", "events accepted and produced to Kafka", ["source"])
REJECTED = Counter(
    "stopline_ingest_rejected_total",
    "events refused (invalid, forbidden_kind, duplicate, unauthenticated, too_large, unavailable)",
    ["source", "reason"],
)
# By the sending institution only: the unknown value is whatever a bank wrote, an unbounded label.
UNKNOWN_PAYEE_INSTITUTION = Counter(
    "stopline_ingest_unknown_payee_institution_total",
    "events accepted whose payee_institution names no Stopline institution",
    ["institution"],
)
