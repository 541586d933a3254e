"""`python -m models.training`: simulate labelled traffic, build the feature table, train and calibrate the
model, evaluate it on a held-out later period, and write the versioned artifact and its report.

    python -m models.training                      # everything (`make train`)
    python -m models.training --table rows.csv     # any labelled table instead (models.training.generic)
    python -m models.training --table sim.npz --table feedback.csv.gz   # more rows to train on

With several tables the first is the evaluation table: it is split by time (the last --test-days held
out) as a single table is; its held-out part alone gives the metrics, its validation slice the
thresholds. Every further table only adds training rows. A feedback export holds the payments the old
model alerted on, a biased sample of traffic: evaluated on, it would set thresholds for the alerted few
rather than for all payments.
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

from models import artifact
from models.features.vector import FEATURE_NAMES
from models.training import generic, publish, report
from models.training.dataset import Observation, build_table
from models.training.evaluate import evaluate, per_event, single_feature_auc
from models.training.fit import FitConfig, fit
from models.training.table import Columns, FeatureTable, TableError, save
from services.simulator.offline import OfflineConfig, Truth, generate, parameter_ranges

log = logging.getLogger("models.training")
REPORTS = Path(__file__).resolve().parents[1] / "reports"
DATA = Path(".local/models")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training", description=__doc__)
    p.add_argument("--days", type=float, default=21.0, help="simulated days")
    p.add_argument("--population", type=int, default=2000)
    p.add_argument(
        "--scams-per-day", type=float, default=80.0, help="scam episodes started a day (before rhythm)"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--test-days",
        type=float,
        help="the last days held out for evaluation (default 7 for the simulated traffic; with --table, "
        "--test-share applies unless this is given)",
    )
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
        help="train on this labelled table (.npz/.csv/.csv.gz) instead, on its own feature columns. "
        "Repeatable, with the same feature columns: the first is the evaluation table (split by time); "
        "every further one (e.g. a `models.training.feedback` export) is only added to the rows trained on",
    )
    p.add_argument("--label-column", default="label", help="with --table: the 0/1 label column")
    p.add_argument(
        "--time-column",
        default="scored_at",
        help="with --table: the time column (seconds since the epoch, or ISO 8601 with a zone)",
    )
    p.add_argument("--id-column", default="event_ref", help="with --table: the row id column")
    p.add_argument(
        "--features",
        help="with --table: the feature columns, comma-separated (default: every column that is not the "
        "label, time or id column nor occurred_at, episode_id or typology)",
    )
    p.add_argument(
        "--test-share",
        type=float,
        default=0.25,
        help="with --table and no --test-days: the latest share of the first table's rows held out",
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
    version = args.version or datetime.now(UTC).strftime("m-%Y%m%d-%H%M%S")
    if args.table is not None:
        columns = Columns(
            label=args.label_column,
            time=args.time_column,
            id=args.id_column,
            features=tuple(f.strip() for f in args.features.split(",")) if args.features else None,
        )
        return generic.run(
            args.table,
            columns=columns,
            test_days=args.test_days,
            test_share=args.test_share,
            version=version,
            artifacts=args.artifacts,
            reports=args.reports,
            promote=not args.no_promote,
            libraries=_libraries(),
        )
    return simulated(args, version)


def simulated(args: argparse.Namespace, version: str) -> dict[str, Any]:
    began = time.perf_counter()
    test_days = 7.0 if args.test_days is None else args.test_days
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
    cut = float(table.scored_at.max()) - test_days * 86_400
    train_mask = table.scored_at < cut
    train, test = table.subset(train_mask), table.subset(~train_mask)
    model = fit(train, FEATURE_NAMES, FitConfig())
    scores = model.predict_proba(test.columns(FEATURE_NAMES))[:, 1]
    episodes = [
        e for e in episodes_all if _started(e) >= cut and e["scenario_id"] in set(test.episode_id.tolist())
    ]
    result = evaluate(test, scores, episodes, budget_per_day=args.budget_per_day)
    shuffled = _shuffled_pr_auc(train, test)
    leakage = single_feature_auc(test)
    negatives = train.columns(FEATURE_NAMES)[train.label == 0]
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
            "training_only_rows": 0,
            "test_rows": len(test),
            "test_days": test_days,
            "burn_in_days": args.burn_in_days,
            "late_share": args.late_share,
        },
        "metrics": result.as_dict(),
        "leakage": {"shuffled_label_pr_auc": shuffled, "single_feature_auc": leakage[:10]},
        "thresholds": {"alert": result.threshold_budget, "fpr_1pct": result.threshold_1pct},
        "typical_values": np.median(negatives, axis=0).tolist(),
        "libraries": _libraries(),
    }
    where = publish.save(model, card, args.artifacts, version)
    card = artifact.read_card(where)
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
        "episode_recall_1pct": _rounded(result.episode_recall_1pct),
        "per_typology_1pct": result.per_typology_1pct,
        "episode_recall_budget": _rounded(result.episode_recall_budget),
        "early_share_1pct": _rounded(result.early_share_1pct),
    }
    return summary


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _started(episode: dict[str, Any]) -> float:
    started = episode.get("started_at")
    return datetime.fromisoformat(started).timestamp() if started else float(episode.get("first_seen", 0.0))


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
        sys.stderr.write(f"python -m models.training: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    cli()
