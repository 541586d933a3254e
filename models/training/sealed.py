"""`python -m models.training.sealed`: a released model judged once on a sealed evaluation world, a seed no
training run, design or release was measured on before (docs/model.md has the protocol).

    python -m models.training.sealed --seed 5107                         # the active model
    python -m models.training.sealed --model m-20261202-r7 --seed 5107

The world follows the training run's own evaluation plan (people, measured days, warm-up, scams a day,
start), as the model card records it, with another seed; the artifact is loaded as the scorer loads it,
and the traffic replayed and measured by the training report's own code (`simulated.replay_evaluation`,
`simulated.evaluation_quality`). Nothing is trained; neither the artifact nor `ACTIVE` changes. The
figures go to `models/reports/<version>/sealed-<seed>.md` and `.json`; on the model's own development
world (its training seed + 1000) they are the training report's again, as `development-<seed>.*`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from models import artifact
from models.artifact import ArtifactError
from models.training import cached, report, simulated, train
from services.simulator.offline import OfflineConfig

log = logging.getLogger("models.training.sealed")
SEALED, DEVELOPMENT = "sealed", "development"
# The code the figures come from, beside the world's (cached.SOURCES): a later run can tell it changed.
CODE = (
    *cached.SOURCES,
    "services/scorer",
    "models/training/simulated.py",
    "models/training/scorer_replay.py",
    "models/training/alert_quality.py",
)


class SeedRefused(ValueError):
    """The seed cannot give a sealed measurement of this model; the message says why."""


def plan_of(card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The training run's evaluation plan, and where each value comes from: the model card where it
    records it, else `python -m models.training`'s default."""
    recorded = card.get("data", {}).get("evaluation", {})
    trained = card.get("data", {}).get("training", {})
    defaults = train.parse([])
    plan: dict[str, Any] = {}
    source: dict[str, str] = {}

    def take(name: str, value: Any, default: Any, *, known: bool) -> None:
        plan[name] = value if known else default
        source[name] = "model card" if known else "train CLI default"

    take("population", recorded.get("population"), defaults.eval_population, known="population" in recorded)
    take("warm_days", recorded.get("warm_days"), defaults.eval_warm_days, known="warm_days" in recorded)
    # The card's days are the whole traffic's, warm-up included.
    measured = recorded["days"] - plan["warm_days"] if "days" in recorded else None
    take("days", measured, defaults.eval_days, known=measured is not None)
    take(
        "scams_per_day",
        recorded.get("scams_per_day"),
        defaults.eval_scams_per_day,
        known="scams_per_day" in recorded,
    )
    # As the train CLI places it: right after the training traffic.
    train_start = trained.get("start", OfflineConfig().start.isoformat())
    after_training = datetime.fromisoformat(train_start) + timedelta(days=trained.get("days", defaults.days))
    take("start", recorded.get("start"), after_training.isoformat(), known="start" in recorded)
    # Not an option of the train CLI: every world draws its own share of silent institutions.
    plan["silent_share"] = None
    source["silent_share"] = "train CLI (no option): the world's own draw"
    return plan, source


def world_of(plan: dict[str, Any], seed: int) -> OfflineConfig:
    return simulated.evaluation_world(
        seed,
        population=plan["population"],
        days=plan["days"],
        warm_days=plan["warm_days"],
        scams_per_day=plan["scams_per_day"],
        start=datetime.fromisoformat(plan["start"]),
    )


def kind_of(card: dict[str, Any], seed: int, reports: Path) -> str:
    """`sealed` or `development`; a seed that cannot judge this model is refused."""
    data = card.get("data", {})
    if seed == data.get("training", {}).get("seed"):
        raise SeedRefused(f"seed {seed} is the world {card['version']} was trained on")
    if seed == data.get("evaluation", {}).get("seed"):
        return DEVELOPMENT
    # A sealed world judges one release: compared across releases, it would be choosing among them.
    others = sorted(
        p.parent.name for p in reports.glob(f"*/{SEALED}-{seed}.json") if p.parent.name != card["version"]
    )
    if others:
        raise SeedRefused(
            f"seed {seed} is already the sealed world of {', '.join(others)}: choose a fresh one"
        )
    return SEALED


def measure(version: str, seed: int, *, artifacts: Path, reports: Path) -> dict[str, Any]:
    """Replay the world of `seed` through the scorer with `version`, write the report, return its record."""
    began = time.perf_counter()
    code = cached.code_digest(CODE)[:16]  # of the code about to run
    loaded = artifact.load(version, artifacts)  # a clear error before anything runs
    card = loaded.card
    kind = kind_of(card, seed, reports)
    plan, source = plan_of(card)
    world = world_of(plan, seed)
    log.info("%s on the %s world %d: %s", version, kind, seed, plan)
    scored, truth = simulated.replay_evaluation(world, artifacts, version)
    quality = simulated.evaluation_quality(world, plan["warm_days"], scored.alerts, truth)
    a = quality.as_dict()
    record: dict[str, Any] = {
        "version": version,
        "seed": seed,
        "kind": kind,
        "model_sha256": card["model_sha256"],
        "alert_threshold": loaded.alert_threshold,
        "plan": plan,
        "plan_from": source,
        "traffic": {**simulated.traffic(world, truth), "events": scored.events},
        "alert_level": a,
        "intervals": report.intervals(a),
        "development": {
            "seed": card.get("data", {}).get("evaluation", {}).get("seed"),
            "alert_level": card.get("metrics", {}).get("alert_level"),
        },
        "code_digest": code,
        "seconds": round(time.perf_counter() - began, 1),
    }
    out = reports / version
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{kind}-{seed}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.sealed_markdown(record))
    return record


def summary(record: dict[str, Any], where: Path) -> dict[str, Any]:
    a, ci = record["alert_level"], record["intervals"]
    return {
        "version": record["version"],
        "seed": record["seed"],
        "kind": record["kind"],
        "report": str(where),
        "episodes_alerted": f"{a['caught']}/{a['episodes']}",
        "early": f"{a['caught_early']}/{a['episodes']}",
        "false_per_1000_people_day": a["false_per_1000_people_day"],
        "hard_negatives": {k: f"{v['alerted']}/{v['episodes']}" for k, v in a["hard_negatives"].items()},
        "intervals": ci,
        "seconds": record["seconds"],
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.training.sealed", description=__doc__)
    p.add_argument("--model", help="the artifact's version (default: the active one)")
    p.add_argument("--seed", type=int, required=True, help="the evaluation world's seed, never used before")
    p.add_argument("--artifacts", type=Path, default=artifact.ARTIFACTS)
    p.add_argument("--reports", type=Path, default=train.REPORTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    version = args.model or artifact.active_version(args.artifacts)
    record = measure(version, args.seed, artifacts=args.artifacts, reports=args.reports)
    return summary(record, args.reports / version / f"{record['kind']}-{args.seed}.md")


def cli(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        with threadpool_limits(limits=1):  # as training: one thread, on cores shared with the services
            out = main(argv)
    except (ArtifactError, SeedRefused) as exc:
        sys.stderr.write(f"python -m models.training.sealed: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    cli()
