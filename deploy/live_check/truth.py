"""Live quality from what a run left behind: the alerts the scorer published and the simulator's ground
truth (JSONL), matched by event reference. Pure functions, so `deploy.live_check` stays orchestration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.schemas.alerts import Alert


@dataclass(frozen=True)
class Episode:
    scenario_id: str
    typology: str
    refs: frozenset[str]  # every event of the scenario that was sent
    money_sent: bool  # at least one of its money events went out, so it could be alerted


def load_truth(path: Path) -> list[Episode]:
    """One episode per scenario id; a scenario cut short at the end keeps only the events it sent."""
    latest: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_bytes().splitlines():
            if line.strip():
                record = orjson.loads(line)
                latest[str(record["scenario_id"])] = record
    out = []
    for sid, record in latest.items():
        refs = frozenset(str(r) for r in record.get("event_ids", []))
        money = set(record.get("victim_payment_ids") or record.get("triggering_event_ids") or [])
        out.append(Episode(sid, str(record.get("typology", "")), refs, bool(money & refs)))
    return out


@dataclass(frozen=True)
class LiveQuality:
    alerts: int
    true_alerts: int
    episodes: int  # scams whose money moved during the run
    caught: int
    minutes: float
    per_typology: dict[str, tuple[int, int]]  # typology → (caught, episodes)
    by_alert_typology: dict[str, tuple[int, int]]  # alert typology → (true, all)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.episodes if self.episodes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "false_alerts": self.alerts - self.true_alerts,
            "precision": _round(self.precision),
            "episodes": self.episodes,
            "caught": self.caught,
            "recall": _round(self.recall),
            "minutes": round(self.minutes, 2),
            "alerts_per_min": round(self.alerts / self.minutes, 2) if self.minutes else None,
            "false_alerts_per_min": round((self.alerts - self.true_alerts) / self.minutes, 2)
            if self.minutes
            else None,
            "per_typology": {
                k: {"caught": c, "episodes": n} for k, (c, n) in sorted(self.per_typology.items())
            },
            "by_alert_typology": {
                k: {"true": t, "all": n} for k, (t, n) in sorted(self.by_alert_typology.items())
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def measure(alerts: Iterable[Alert], episodes: list[Episode], *, minutes: float) -> LiveQuality:
    """An alert is true when one of its triggering events belongs to a scam; a scam is caught when one
    alert names one of its events. Alerts are counted once by id (a re-scored trigger repeats its id)."""
    owner = {ref: e.scenario_id for e in episodes for ref in e.refs}
    unique = {a.alert_id: a for a in alerts}
    caught: set[str] = set()
    true_alerts = 0
    kinds: Counter[str] = Counter()
    kinds_true: Counter[str] = Counter()
    for alert in unique.values():
        hits = {owner[r] for r in alert.triggering_event_ids if r in owner}
        kinds[alert.typology] += 1
        if hits:
            true_alerts += 1
            kinds_true[alert.typology] += 1
            caught |= hits
    moved = [e for e in episodes if e.money_sent]
    per: dict[str, tuple[int, int]] = {}
    for e in moved:
        c, n = per.get(e.typology, (0, 0))
        per[e.typology] = (c + (e.scenario_id in caught), n + 1)
    return LiveQuality(
        alerts=len(unique),
        true_alerts=true_alerts,
        episodes=len(moved),
        caught=sum(1 for e in moved if e.scenario_id in caught),
        minutes=minutes,
        per_typology=per,
        by_alert_typology={k: (kinds_true[k], n) for k, n in kinds.items()},
    )
