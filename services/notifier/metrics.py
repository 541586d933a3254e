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
# A warning is counted once, by its first answer and its first outcome, so that a label's share of the sum
# is a share of warnings; a later change is counted on a label of its own, "<first>_then_<last>", to be
# taken off the first's count and added to the last's for where the warnings ended up.
OUTCOMES = Counter(
    "stopline_warning_outcomes_total",
    "warnings by first outcome: dissuaded, reached_too_late, not_reached; a first outcome replaced later: "
    "dissuaded_then_reached_too_late, not_reached_then_reached_too_late",
    ["outcome"],
)
DECISIONS = Counter(
    "stopline_warning_decisions_total",
    "valid alerts considered: created, episode, rate_limited, duplicate, no_warning (invalid ones are "
    "dead letters)",
    ["decision"],
)
DEAD_LETTERS = Counter(
    "stopline_notifier_dead_letters_total",
    "alerts set aside on the dead-letter topic: invalid, or unhandled (failed alone at every attempt)",
    ["reason"],
)
DESK_TASKS = Counter("stopline_desk_tasks_total", "phone-desk tasks opened", ["reason"])
ANSWERS = Counter(
    "stopline_warning_answers_total",
    "warnings answered, by first answer: safe, defrauded; a safe one changed later: safe_then_defrauded",
    ["answer"],
)
TOKENS_REFUSED = Counter("stopline_warning_tokens_refused_total", "refused answer links", ["reason"])
