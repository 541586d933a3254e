"""Settings of the scorer (env prefix `STOPLINE_SCORER_`)."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import Settings

Stage = Literal["persons", "accounts"]
STAGES: tuple[Stage, ...] = ("persons", "accounts")


class ScorerSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_SCORER_")

    host: str = Field("127.0.0.1", description="address of the scorer's /metrics and /health")
    port: int = Field(8002, description="port of the scorer's /metrics and /health")
    stages: list[Stage] = Field(
        default_factory=lambda: list(STAGES),
        min_length=1,
        description="the stages this process runs (JSON list): both, or one per process so that each has a "
        "core (`make run` and `make bench` run one process per stage)",
    )
    alert_threshold: float = Field(0.6, ge=0, le=1, description="score at or above which an alert is raised")
    police_threshold: float = Field(0.75, ge=0, le=1, description="score from which police are notified")
    stop_payment_threshold: float = Field(
        0.85, ge=0, le=1, description="score from which stop-payment is advised"
    )
    large_amount: float = Field(
        5000.0,
        gt=0,
        description="CNY from which a transfer to a new payee after a long call from a stranger, a SIM "
        "change or a link SMS then a new device's login alerts whatever the model says (warm state only)",
    )
    long_call_minutes: float = Field(
        20.0,
        gt=0,
        description="a call from an unknown number at least this long, ended at most call_gap_minutes "
        "before a large transfer to a payee never paid, alerts whatever the model says (warm state only)",
    )
    call_gap_minutes: float = Field(
        30.0, gt=0, description="longest gap from the end of that call to the transfer"
    )
    mule_min_payers: int = Field(
        5, ge=2, description="distinct payers in an hour that make an account suspect"
    )
    mule_min_payout_ratio: float = Field(
        0.5, ge=0, le=1, description="share paid out in the hour that confirms it"
    )
    mule_max_rest_minutes: float = Field(
        120.0,
        gt=0,
        description="longest the money may have rested in the account before this pay-out (a shop collects "
        "all day and pays its supplier at night; a collection account passes money on within the hour)",
    )
    state_horizon_hours: float = Field(
        24 * 7, gt=0, description="how long contacts and payees are remembered"
    )
    max_batch: int = Field(1000, ge=1, description="most records handled in one micro-batch")
    commit_interval_ms: int = Field(
        100,
        ge=0,
        description="how often handled offsets are committed (0: after every batch); a commit is a round "
        "trip the next batch waits for, and what a crash leaves uncommitted is read again and de-duplicated",
    )
    account_horizon_hours: float = Field(
        48, gt=0, description="an account silent this long is forgotten (its windows reach back 24 h)"
    )
    model_dir: Path = Field(
        Path(__file__).resolve().parents[2] / "models" / "artifacts",
        description="directory of versioned model artifacts and of the ACTIVE pointer",
    )
    model: str = Field(
        "", description="model version to score with; empty: the one ACTIVE names, swapped live on promotion"
    )
    shadow_model: str = Field(
        "", description="a second model version scored beside the live one; only agreement is recorded"
    )
    model_alert_threshold: float = Field(
        0.0,
        ge=0,
        le=1,
        description="calibrated model score from which to alert; 0: the model card's threshold (set on the "
        "training's validation slice to keep false alerts under 1 per 1,000 people a day)",
    )
    model_warmup_hours: float = Field(
        24.0,
        ge=0,
        description="event time a partition's state must cover, in both stages (the payer's side and the "
        "payee's), before the model and the long-call and takeover rules alert (the other hard rules "
        "alert at once): the longest feature window; with less, ordinary callers and payees look new",
    )
    model_watch_seconds: float = Field(5.0, gt=0, description="how often the ACTIVE pointer is checked")
    hard_rule_score: float = Field(
        0.95,
        ge=0,
        le=1,
        description="score given when a hard rule fires (reported caller, known mule, a long call from a "
        "stranger, an account taken over)",
    )
    snapshot_interval_seconds: float = Field(
        30.0,
        ge=0,
        description="how often each partition's state is written to `scorer.snapshots` (after a committed "
        "batch); a restarted or newly assigned instance replays only the input since the last one",
    )
    gc_full_interval_seconds: float = Field(
        3600.0,
        ge=0,
        description="how often the old generation of Python's cycle collector is scanned (each scan holds "
        "the loop a large fraction of a second with a large state); 0: as often as Python's own pacing",
    )
    snapshot_revoke_tail_records: int = Field(
        2000,
        ge=0,
        description="a partition revoked (or the scorer stopping cleanly) gets a last snapshot only if "
        "more input records than this were handled since its last one; the next owner replays at most "
        "that many instead, unless a snapshot is late (the whole group waits for a revocation); 0: always",
    )
    snapshot_revoke_budget_seconds: float = Field(
        2.0,
        ge=0,
        description="how long, from its start, a revocation waits for a periodic snapshot being written "
        "and for Kafka to acknowledge its own last snapshots, their encoding counted in (the whole group "
        "waits for a revocation); those not acknowledged by then land in the background, and the next "
        "owner may replay from an older snapshot; 0: no wait. A clean stop waits for all",
    )
    dedup_max_refs: int = Field(
        50_000,
        ge=100,
        description="most event ids remembered per partition to drop redelivered events (within an hour)",
    )
