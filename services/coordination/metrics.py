"""Prometheus metrics of the coordination service."""

from prometheus_client import Counter, Gauge, Histogram

ALERTS_RECEIVED = Counter("stopline_coordination_alerts_received_total", "alerts consumed", ["typology"])
ALERTS_STORED = Counter("stopline_coordination_alerts_stored_total", "alerts stored (not seen before)")
ALERTS_UPDATED = Counter(
    "stopline_coordination_alerts_updated_total", "stored alerts a later revision changed (episode grew)"
)
DEAD_LETTERS = Counter(
    "stopline_coordination_dead_letters_total",
    "alerts set aside on the dead-letter topic: invalid, or unhandled (failed alone at every attempt)",
    ["reason"],
)

INSTRUCTIONS_ISSUED = Counter("stopline_instructions_issued_total", "instructions issued", ["kind"])
INSTRUCTION_TRANSITIONS = Counter(
    "stopline_instruction_transitions_total", "instruction status changes", ["kind", "status"]
)
RESPONSES = Counter("stopline_instruction_responses_total", "institution answers", ["channel", "outcome"])
RESPONSES_REFUSED = Counter(
    "stopline_instruction_responses_refused_total",
    "answers refused on a response topic (invalid, foreign or illegal), by the topic's institution",
    ["institution", "reason"],
)
REFUSALS_TOLD = Counter(
    "stopline_instruction_refusals_told_total",
    "answers refused on a response topic, by what became of the notice to their sender: queued; repeat (a"
    " record handled again, told before); no_channel (the sender has none configured)",
    ["outcome"],
)
DELIVERED = Counter("stopline_outbox_delivered_total", "messages delivered", ["channel"])
DELIVERY_SECONDS = Histogram(
    "stopline_outbox_delivery_seconds",
    "from queued to delivered",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WEBHOOK_SECONDS = Histogram("stopline_webhook_call_seconds", "duration of one webhook call")
WEBHOOK_FAILURES = Counter("stopline_webhook_failures_total", "webhook attempts that failed")
DEAD = Counter(
    "stopline_outbox_dead_total", "messages given up after their last attempt (dead letters)", ["channel"]
)
PENDING = Gauge("stopline_outbox_pending", "messages neither delivered nor given up", ["channel"])
OLDEST_PENDING = Gauge(
    "stopline_outbox_oldest_pending_seconds",
    "age of the oldest message neither delivered nor given up (0: none waits)",
    ["channel"],
)
OUTBOX_PURGED = Counter(
    "stopline_outbox_purged_total", "messages delivered or given up that the housekeeping removed"
)
RELAY_FENCED = Counter(
    "stopline_relay_fenced_total", "producers of other relays fenced before their messages were taken over"
)
RELAY_ERRORS = Counter("stopline_relay_errors_total", "relay batches that failed and will be retried")
OUTBOX_HELD = Counter(
    "stopline_outbox_held_total", "Kafka messages held back, their topic not made; tried again in seconds"
)
ESCALATIONS = Counter(
    "stopline_escalations_total", "overdue or undeliverable instructions", ["kind", "stage"]
)
OVERDUE = Gauge("stopline_instructions_overdue", "instructions past a deadline and not answered")
EXPIRED = Counter("stopline_holds_expired_total", "stop-payments and freezes that lapsed", ["kind"])
# NaN until the first verification ends: neither "broken" nor "verified" before anything was checked.
AUDIT_CHAIN_OK = Gauge(
    "stopline_audit_chain_ok", "1: the audit chain verified; 0: broken (the log names the row)"
)
AUDIT_CHAIN_OK.set(float("nan"))
AUDIT_ROWS_VERIFIED = Gauge(
    "stopline_audit_rows_verified", "audit rows from the first through where the last verification ended"
)
AUDIT_VERIFIED_AT = Gauge(
    "stopline_audit_verified_timestamp_seconds",
    "when the last walk of the whole audit chain ended (Unix time)",
)
# Not `job`: Prometheus keeps that label for the scrape target and renames ours to exported_job.
SCHEDULER_ERRORS = Counter("stopline_scheduler_errors_total", "scheduled job runs that failed", ["task"])
