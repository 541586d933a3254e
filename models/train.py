"""`python -m models.train`: simulate labelled traffic, build the feature table, train and calibrate the
model, evaluate it on a held-out later period, and write the versioned artifact and its report.

    python -m models.train                      # everything (`make train`)
    python -m models.train --table rows.csv     # train on any labelled feature table instead
    python -m models.train --table sim.npz --table feedback.csv.gz   # more rows to train on

With several tables the first is the evaluation table: it is split by time (the last --test-days held
out) as a single table is; its held-out part alone gives the metrics and the thresholds (alert,
fpr_1pct, budget), its training part the model card's typical values. Every further table only adds
training rows. A feedback export holds the payments the old model alerted on, a biased sample of
traffic: evaluated on, it would set thresholds for the alerted few rather than for all payments.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from models import artifact, report
from models.dataset import Observation, build_table
from models.evaluate import evaluate, per_event, single_feature_auc
from models.features.vector import FEATURE_NAMES
from models.fit import FitConfig, fit
from models.table import FeatureTable, TableError, concat, load_each, save
from services.simulator.offline import OfflineConfig, Truth, generate, parameter_ranges

log = logging.getLogger("models.train")
REPORTS = Path(__file__).resolve().parent / "reports"
DATA = Path(".local/models")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__)
    p.add_argument("--days", type=float, default=21.0, help="simulated days")
    p.add_argument("--population", type=int, default=2000)
    p.add_argument(
        "--scams-per-day", type=float, default=80.0, help="scam episodes started a day (before rhythm)"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--test-days", type=float, default=7.0, help="the last days held out for evaluation")
    p.add_argument(
        "--burn-in-days",
        type=float,
        default=0.0,
        help="first days only warm the state up; 0 keeps them, so the model also learns what a scorer with "
        "little history sees (a restart without snapshots, a new customer)",
    )
    p.add_argument(
        "--late-share",
        type=float,
        default=0.5,
        help="share of people first watched at a random moment of the period (a scorer knows people only "
        "since it started), so short histories are in training as they are live",
    )
    p.add_argument(
        "--budget-per-day",
        type=float,
        default=500.0,
        help="alerts a day operators can triage (the simulation runs ~45 scams a day in 2,000 people)",
    )
    p.add_argument(
        "--table",
        type=Path,
        action="append",
        help="train on this feature table (.npz/.csv/.csv.gz) instead. Repeatable, with the same feature "
        "columns: the first is the evaluation table (split by time; its last --test-days alone give the "
        "metrics and thresholds); every further one (e.g. a `models.feedback` export) is only added to "
        "the training rows, never evaluated on",
    )
    p.add_argument("--version", help="artifact version (default: m-<UTC time>)")
    p.add_argument("--artifacts", type=Path, default=artifact.ARTIFACTS)
    p.add_argument("--reports", type=Path, default=REPORTS)
    p.add_argument("--no-promote", action="store_true", help="do not make it the active model")
    return p.parse_args(argv)


def _libraries() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in ("scikit-learn", "numpy", "joblib"):
        out[lib] = metadata.version(lib)
    return out


def simulate(args: argparse.Namespace) -> tuple[FeatureTable, Truth, OfflineConfig]:
    config = OfflineConfig(
        population=args.population, days=args.days, scams_per_day=args.scams_per_day, seed=args.seed
    )
    truth = Truth()
    began = time.perf_counter()
    start = config.start.timestamp()
    observe = Observation(start, config.days * 86_400, late_share=args.late_share, seed=args.seed)
    table = build_table(
        generate(config, truth), truth, burn_in_until=start + args.burn_in_days * 86_400, observe=observe
    )
    log.info(
        "feature table: %d rows, %d positive, %.0f s",
        len(table),
        table.label.sum(),
        time.perf_counter() - began,
    )
    return table, truth, config


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    began = time.perf_counter()
    version = args.version or datetime.now(UTC).strftime("m-%Y%m%d-%H%M%S")
    training_only: list[FeatureTable] = []  # tables after the first: trained on, never evaluated on
    if args.table is None:
        table, truth, config = simulate(args)
        DATA.mkdir(parents=True, exist_ok=True)
        save(table, DATA / f"{version}.npz")
        episodes_all = truth.episodes
        data: dict[str, Any] = {
            "source": "simulated (services.simulator.offline)",
            "population": config.population,
            "days": config.days,
            "seed": config.seed,
            "typologies": list(config.typologies),
            "parameter_ranges": parameter_ranges(),
        }
    else:
        table, *training_only = load_each(args.table)
        episodes_all = _episodes_from_table(table)
        data = {
            "source": ", ".join(str(p) for p in args.table),
            "population": "n/a",
            "days": "n/a",
            "typologies": sorted({str(t) for t in table.typology if t}),
            "parameter_ranges": {},
        }
    # `table` is the evaluation table: split by time; the further tables only add training rows.
    cut = float(table.scored_at.max()) - args.test_days * 86_400
    train_mask = table.scored_at < cut
    older, test = table.subset(train_mask), table.subset(~train_mask)
    train = concat([older, *training_only])
    model = fit(train, FEATURE_NAMES, FitConfig())
    scores = model.predict_proba(test.columns(FEATURE_NAMES))[:, 1]
    episodes = [
        e for e in episodes_all if _started(e) >= cut and e["scenario_id"] in set(test.episode_id.tolist())
    ]
    result = evaluate(test, scores, episodes, budget_per_day=args.budget_per_day)
    shuffled = _shuffled_pr_auc(train, test)
    leakage = single_feature_auc(test)
    # Typical values stand for ordinary traffic (explain.py): not the alerted sample of a feedback table.
    negatives = older.columns(FEATURE_NAMES)[older.label == 0]
    card: dict[str, Any] = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "kind": "HistGradientBoostingClassifier + isotonic CalibratedClassifierCV",
            **asdict(FitConfig()),
        },
        "data": {
            **data,
            "episodes": len(episodes_all),
            "train_rows": len(train),
            "training_only_rows": len(train) - len(older),
            "test_rows": len(test),
            "test_days": args.test_days,
            "burn_in_days": args.burn_in_days,
            "late_share": args.late_share,
        },
        "metrics": result.as_dict(),
        "leakage": {"shuffled_label_pr_auc": shuffled, "single_feature_auc": leakage[:10]},
        "thresholds": {"alert": result.threshold_budget, "fpr_1pct": result.threshold_1pct},
        "typical_values": np.median(negatives, axis=0).tolist(),
        "libraries": _libraries(),
    }
    where = artifact.save(model, card, args.artifacts, version)
    card = json.loads((where / artifact.CARD_FILE).read_text())
    (where / "card.md").write_text(report.card_markdown(card))
    out = args.reports / version
    report.plots(per_event(test, scores), out)
    (out / "report.md").write_text(report.markdown(card, result, leakage, shuffled))
    if not args.no_promote:
        artifact.promote(version, args.artifacts)
    summary = {
        "version": version,
        "artifact": str(where),
        "report": str(out / "report.md"),
        "seconds": round(time.perf_counter() - began, 1),
        "pr_auc": round(result.pr_auc, 4),
        "episode_recall_1pct": round(result.episode_recall_1pct, 4),
        "per_typology_1pct": result.per_typology_1pct,
        "episode_recall_budget": round(result.episode_recall_budget, 4),
        "early_share_1pct": round(result.early_share_1pct, 4),
    }
    return summary


def _started(episode: dict[str, Any]) -> float:
    started = episode.get("started_at")
    return datetime.fromisoformat(started).timestamp() if started else float(episode.get("first_seen", 0.0))


def _episodes_from_table(table: FeatureTable) -> list[dict[str, Any]]:
    """Without simulator truth: an episode is the positive rows sharing an episode id (when the money
    left the first payee is not known, so every catch counts as early)."""
    out: dict[str, dict[str, Any]] = {}
    for i in np.flatnonzero(table.label == 1):
        sid = str(table.episode_id[i]) or str(table.event_ref[i])
        ep = out.setdefault(
            sid,
            {
                "scenario_id": sid,
                "typology": str(table.typology[i]) or "unknown",
                "first_seen": float(table.scored_at[i]),
                "first_payout_at": None,
            },
        )
        ep["first_seen"] = min(ep["first_seen"], float(table.scored_at[i]))
    return list(out.values())


def _shuffled_pr_auc(train: FeatureTable, test: FeatureTable) -> float:
    """Leakage check: the same pipeline on permuted training labels must score near the base rate."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    shuffled = replace(train, label=rng.permutation(train.label))
    model = fit(shuffled, FEATURE_NAMES, FitConfig(max_iter=60))
    return float(average_precision_score(test.label, model.predict_proba(test.columns(FEATURE_NAMES))[:, 1]))


def cli(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        summary = main(argv)
    except TableError as exc:  # a table that does not fit: the message says which and why
        sys.stderr.write(f"python -m models.train: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    cli()
