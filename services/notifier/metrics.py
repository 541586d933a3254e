"""Prometheus metrics of the notifier."""

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)

EVENT_TO_SENT = Histogram(
    "stopline_warning_event_to_sent_seconds",
    "from the triggering event to the warning handed to the gateway",
    ["channel"],
    buckets=_LATENCY_BUCKETS,
)
EVENT_TO_DELIVERED = Histogram(
    "stopline_warning_event_to_delivered_seconds",
    "from the triggering event to the gateway's receipt that the warning was delivered",
    ["channel"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "stopline_warning_deliveries_total",
    "delivery results by channel: sent, retry, dead, delivered, failed",
    ["channel", "result"],
)
OUTCOMES = Counter("stopline_warning_outcomes_total", "dissuaded, reached_too_late, not_reached", ["outcome"])
DECISIONS = Counter(
    "stopline_warning_decisions_total",
    "alerts considered: created, episode, rate_limited, duplicate, no_warning, invalid",
    ["decision"],
)
DESK_TASKS = Counter("stopline_desk_tasks_total", "phone-desk tasks opened", ["reason"])
ANSWERS = Counter("stopline_warning_answers_total", "citizens' answers", ["answer"])
TOKENS_REFUSED = Counter("stopline_warning_tokens_refused_total", "refused answer links", ["reason"])
