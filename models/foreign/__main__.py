"""Generate a foreign world and replay it through the scorer's own code:

python -m models.foreign --people 10000 --days 9 --measure-days 2 --seed 1 --model m-20261202-r7
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from models.foreign.measure import report
from models.foreign.world import build
from models.training.scorer_replay import OfflineScorer, Replayed
from streams.schemas.alerts import Alert

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m models.foreign")
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=9)
    ap.add_argument("--measure-days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--artifacts", type=Path, default=ROOT / "models" / "artifacts")
    ap.add_argument("--model", default="", help="model version; empty: the artifacts' ACTIVE")
    ap.add_argument("--out", type=Path, default=ROOT / ".local" / "foreign")
    ap.add_argument(
        "--from-alerts", action="store_true", help="measure the alerts a replay saved, without replaying"
    )
    args = ap.parse_args()
    version = args.model or (args.artifacts / "ACTIVE").read_text().strip()

    began = time.monotonic()
    world = build(args.people, args.days, args.seed)
    planned = time.monotonic() - began
    saved = args.out / f"{args.seed}.alerts.jsonl"
    if args.from_alerts:  # the world's ground truth is planned before any routine event: the same again
        lines = saved.read_text().splitlines()
        alerts = [(float(d["at"]), Alert.model_validate(d["alert"])) for d in map(json.loads, lines)]
        replayed = Replayed(alerts=alerts)
    else:
        replayed = OfflineScorer(args.artifacts, version).run(world.events())
    took = time.monotonic() - began
    result = report(world, replayed.alerts, args.measure_days)
    result |= {
        "seed": args.seed,
        "model": version,
        "events": replayed.events,
        "rows_scored": len(replayed.rows),
        "seconds_planning": round(planned, 1),
        "seconds_total": round(took, 1),
        "params": {k: v for k, v in vars(world.params).items() if k != "silent"},
    }
    text = json.dumps(result, indent=2, default=str)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.from_alerts:
        # The alerts as made, to measure again without replaying (a JSON line each: report time, alert).
        with saved.open("w") as f:
            for at, alert in replayed.alerts:
                f.write(json.dumps({"at": at, "alert": alert.model_dump(mode="json")}) + "\n")
    (args.out / f"{args.seed}{'.remeasured' if args.from_alerts else ''}.json").write_text(text)
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
