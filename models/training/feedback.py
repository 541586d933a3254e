"""`python -m models.training.feedback export`: what officers decided about alerts, as a labelled feature
table for the next training (`python -m models.training --table simulated.npz --table feedback.csv.gz`).

    python -m models.training.feedback export --out .local/models/feedback.csv.gz --since 2026-11-01T00:00:00Z

Labels, from the coordination database (the first rule that applies):
1. an alert without the model's input (rule-based alerts, alerts stored before alerts carried it) or with
   input from another feature set than the current code's, whose numbers would be misread: left out;
2. an alert linked to a case closed as confirmed_fraud: 1, whatever triage or its other cases said;
3. an alert linked to a case still open: left out, its decision is pending;
4. an alert linked to a case closed as false_alarm: 0;
5. an alert dismissed in triage: 0. An undetermined case says nothing either way, so the operator's
   dismissal stands;
6. anything else is left out: an alert whose only decision is an undetermined case, or with no decision.
One row per labelled alert: its model input, the money event that triggered it, when it was scored and
when the money moved. No phone or account number is read or written, and the identifiers that could be
joined back to a victim are keyed pseudonyms (services.kit.logging.pseudonym, STOPLINE_PSEUDONYM_KEY):
`event_ref` is that of the bank's transaction id, `episode_id` that of the police case number (so the
rows of one case still share it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from models.training.table import FeatureTable, save
from services.coordination.public import AlertWithCases, alerts_with_cases
from services.kit.db import make_engine, make_sessionmaker
from services.kit.logging import configure_logging, pseudonym
from services.kit.settings import CommonSettings

SUFFIXES = (".npz", ".csv", ".csv.gz")


@dataclass(frozen=True)
class Decision:
    label: int | None  # None: left out of the table
    reason: str  # what gave the label, or why the alert is left out
    episode_id: str = ""


def decide(alert: AlertWithCases) -> Decision:
    """The training label of one alert, or why it has none (the rules of the module docstring)."""
    if alert.features is None:
        return Decision(None, "no_features")
    if alert.feature_set != FEATURE_SET_HASH or len(alert.features) != len(FEATURE_NAMES):
        return Decision(None, "other_feature_set")
    closed = [c for c in alert.cases if c.status == "closed"]
    confirmed = [c for c in closed if c.outcome == "confirmed_fraud"]
    if confirmed:
        # A confirmed case outweighs a triage dismissal or another case's false alarm: money was lost.
        return Decision(1, "confirmed_fraud", confirmed[0].case_number)
    if len(closed) < len(alert.cases):
        return Decision(None, "case_open")
    if any(c.outcome == "false_alarm" for c in closed):
        return Decision(0, "false_alarm")
    if alert.status == "dismissed":
        return Decision(0, "dismissed")  # its cases, if any, are undetermined: the dismissal stands
    if closed:
        return Decision(None, "undetermined")
    return Decision(None, "no_decision")


def build(alerts: Sequence[AlertWithCases]) -> tuple[FeatureTable, dict[str, Any]]:
    """The feature table of the labelled alerts and a summary of what was kept and left out."""
    kept: list[tuple[AlertWithCases, Decision]] = []
    labelled_by: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for alert in alerts:
        decision = decide(alert)
        if decision.label is None:
            left_out[decision.reason] += 1
        else:
            kept.append((alert, decision))
            labelled_by[decision.reason] += 1
    table = FeatureTable(
        features=FEATURE_NAMES,
        X=np.array([a.features for a, _ in kept], dtype=np.float64).reshape(len(kept), len(FEATURE_NAMES)),
        label=np.array([d.label for _, d in kept], dtype=np.int8),
        scored_at=np.array([a.created_at.timestamp() for a, _ in kept], dtype=np.float64),
        occurred_at=np.array([a.event_time.timestamp() for a, _ in kept], dtype=np.float64),
        # The money event is the last trigger (a call, when there was one, comes before it). Pseudonyms,
        # keyed: a bank's transaction id or a police case number would lead back to the victim.
        event_ref=np.array([pseudonym(a.triggering_event_ids[-1]) for a, _ in kept], dtype=str),
        # As in simulated tables, the episode is empty outside a scam. The scam's typology is left empty:
        # no officer confirms one (the alert's is its kind, or the model's own guess), so the typology
        # classifier learns from the simulator's labelled episodes only.
        episode_id=np.array([pseudonym(d.episode_id) if d.episode_id else "" for _, d in kept], dtype=str),
        typology=np.full(len(kept), "", dtype=str),
    )
    summary = {
        "rows": len(table),
        "by_label": {"1": int(table.label.sum()), "0": len(table) - int(table.label.sum())},
        "labelled_by": dict(sorted(labelled_by.items())),
        "left_out": dict(sorted(left_out.items())),
        "feature_set": FEATURE_SET_HASH,
    }
    return table, summary


async def export(
    session: AsyncSession, *, out: Path, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """Write the labelled alerts created in [since, until) to `out`; return the summary."""
    table, summary = build(await alerts_with_cases(session, since=since, until=until))
    save(table, out)
    return {"out": str(out), **summary}


async def _export_from(database_url: str, out: Path, since: datetime | None, until: datetime | None) -> Any:
    engine = make_engine(database_url, pool_size=1, statement_timeout_ms=600_000)
    try:
        async with make_sessionmaker(engine)() as session:  # read only: nothing to commit
            return await export(session, out=out, since=since, until=until)
    finally:
        await engine.dispose()


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone (e.g. 2026-11-01T00:00:00+08:00 or ...Z)"
        )
    return at


def _table_path(text: str) -> Path:
    if not text.endswith(SUFFIXES):
        raise argparse.ArgumentTypeError(f"{text!r}: the table is written as {', '.join(SUFFIXES)}")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.feedback",
        description="officers' decisions on alerts as training labels",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write the labelled alerts as a feature table")
    ex.add_argument("--out", type=_table_path, required=True, help="the table (.npz, .csv or .csv.gz)")
    ex.add_argument("--since", type=_instant, help="alerts created at or after (ISO 8601 with zone)")
    ex.add_argument("--until", type=_instant, help="alerts created before (ISO 8601 with zone)")
    args = parser.parse_args(argv)
    common = CommonSettings()
    common.check_production_secrets()  # the pseudonyms are only as good as their key
    configure_logging(
        service="models.training.feedback", level=common.log_level, pseudonym_key=common.pseudonym_key
    )
    summary = asyncio.run(_export_from(common.database_url, args.out, args.since, args.until))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
