"""Prometheus metrics of the scorer."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("stopline_scorer_events_total", "events scored", ["type"])
DUPLICATES = Counter("stopline_scorer_duplicate_events_total", "events seen before and skipped")
REPARTITIONED = Counter(
    "stopline_scorer_repartitioned_total",
    "records found on a partition their key does not hash to (a producer with another partitioner), moved "
    "to the right one so that a person's events meet; a record produced twice counts twice",
    ["topic"],
)
DEAD_LETTERS = Counter(
    "stopline_scorer_dead_letters_total",
    "records set aside on the dead-letter topic, counted once Kafka has acknowledged them",
    ["reason"],
)
ALERTS = Counter("stopline_scorer_alerts_total", "alerts raised", ["typology"])
SCORING_SECONDS = Histogram(
    "stopline_scorer_event_to_alert_seconds",
    "from the triggering event's arrival in Kafka to the alert acknowledged by Kafka",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_EVENTS = Histogram(
    "stopline_scorer_batch_size", "events per micro-batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000)
)
TRACKED = Gauge("stopline_scorer_tracked", "entities held in scorer state", ["kind"])
MODEL_INFO = Gauge("stopline_scorer_model", "1 for the model version in each role", ["role", "version"])
MODEL_SWAPS = Counter("stopline_scorer_model_swaps_total", "active-model changes seen", ["outcome"])
SCORED = Counter("stopline_scorer_scored_total", "money-outs scored by the model")
SHADOW_COMPARED = Counter("stopline_scorer_shadow_compared_total", "money-outs scored by live and shadow")
SHADOW_DISAGREED = Counter(
    "stopline_scorer_shadow_disagreed_total", "money-outs alerted by one model only", ["which"]
)
SHADOW_SCORE_DIFF = Histogram(
    "stopline_scorer_shadow_score_diff",
    "absolute difference between live and shadow scores",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1),
)
SKIPPED = Counter("stopline_scorer_unscored_total", "inflows not scored, by reason", ["reason"])
HELD_BACK = Counter(
    "stopline_scorer_held_back_total",
    "inflows scored over the threshold while the state was younger than the warm-up: not alerted",
)
REPLAYED = Counter(
    "stopline_scorer_replayed_total",
    "records read again after a snapshot restore, output suppressed",
    ["stage"],
)
SNAPSHOTS = Counter(
    "stopline_scorer_snapshots_total",
    "partition snapshots written, restored, refused or failed; partitions kept in memory across a rebalance; "
    "revoked partitions not written, their tail since the last snapshot being short (skipped); revoked "
    "partitions' snapshots not acknowledged within the revocation's budget (late: written or failed later)",
    ["stage", "outcome"],
)
SNAPSHOT_BYTES = Histogram(
    "stopline_scorer_snapshot_bytes",
    "compressed size of one partition snapshot",
    ["stage"],
    buckets=(1e3, 1e4, 1e5, 1e6, 4e6, 16e6, 64e6),
)
SNAPSHOT_SECONDS = Histogram(
    "stopline_scorer_snapshot_seconds",
    "time to encode, compress and write one partition snapshot",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
SNAPSHOT_BLOCKED_SECONDS = Histogram(
    "stopline_scorer_snapshot_blocked_seconds",
    "time a periodic snapshot held the event loop (its fork; revocations encode in a worker thread)",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
