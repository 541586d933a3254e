"""`python -m models.training`: simulate labelled traffic, build the feature table, train and calibrate the
model, evaluate it on a held-out later period, and write the versioned artifact and its report.

    python -m models.training                      # everything (`make train`, models.training.simulated)
    python -m models.training --table rows.csv     # any labelled table instead (models.training.generic)
    python -m models.training --table sim.npz --table feedback.csv.gz   # more rows to train on

With several tables the first is the evaluation table: it is split by time (the last --test-days held
out) as a single table is; its held-out part alone gives the metrics, its validation slice the
thresholds. Every further table only adds training rows. A feedback export holds the payments the old
model alerted on, a biased sample of traffic: evaluated on, it would set thresholds for the alerted few
rather than for all payments.

The evaluation world (the training seed + 1000) is the development world designs are compared on; a
release is measured once more on a sealed seed: `python -m models.training.sealed` (docs/model.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from models import artifact
from models.training import generic, simulated
from models.training.table import Columns, TableError

log = logging.getLogger("models.training")
REPORTS = Path(__file__).resolve().parents[1] / "reports"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training", description=__doc__)
    # Five times the first models' people at the same rate of scams a person: more examples of the small
    # first payments (docs/model.md has what it changed).
    p.add_argument("--population", type=int, default=15_000, help="people of the training traffic")
    p.add_argument("--days", type=float, default=10.0, help="days of training traffic")
    p.add_argument("--scams-per-day", type=float, default=300.0, help="scam episodes a day (training)")
    p.add_argument("--seed", type=int, default=7, help="the training world's seed; the evaluation's is +1000")
    p.add_argument("--eval-population", type=int, default=10_000, help="people of the evaluation traffic")
    p.add_argument("--eval-days", type=float, default=2.0, help="days of evaluation traffic measured")
    p.add_argument(
        "--eval-warm-days", type=float, default=1.5, help="days before them that warm the scorer up"
    )
    p.add_argument("--eval-scams-per-day", type=float, default=60.0, help="scam episodes a day (evaluation)")
    p.add_argument(
        "--target-false",
        type=float,
        default=1.0,
        help="false alerts per 1,000 people a day the threshold keeps to on the validation slice (the "
        "target on the evaluation traffic is at most 1)",
    )
    p.add_argument(
        "--silent-payee-share",
        type=float,
        default=0.0,
        help="share of the rows fitted on whose payee's outflows are blanked, as a silent institution leaves "
        "them (the training world has few silent institutions)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="processes fitting the report's model variants side by side"
    )
    p.add_argument(
        "--test-days",
        type=float,
        help="with --table: the last days of the first table held out (else --test-share)",
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
    return simulated.run(
        simulated.default_plan(args),
        version=version,
        artifacts=args.artifacts,
        reports=args.reports,
        promote=not args.no_promote,
        libraries=_libraries(),
    )


def cli(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        # One thread: two cores shared with the services; OpenMP threads that wait on each other for a
        # busy core made each tree fit ten times slower.
        with threadpool_limits(limits=1):
            summary = main(argv)
    except TableError as exc:  # a table that does not fit: the message says which and why
        sys.stderr.write(f"python -m models.training: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    cli()
