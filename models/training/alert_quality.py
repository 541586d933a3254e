"""Alert-level quality against ground truth: what an anti-fraud centre would live with. The same measure
for the offline scorer replay (`scorer_replay`) and for the live path (`deploy.live_check`), so the two
can be compared on the same traffic.

An alert is true when one of its triggering events belongs to a scam episode (a victim's payment, the
scam's call); every other alert is false. An episode is alerted when any alert names one of its events,
early when its first alert came before the money left the first payee account. Only observable episodes
count in recall: those with at least one victim payment that Stopline receives (the victim's bank or
payment provider reports). A hard-negative episode is alerted when any alert names one of its events.

An episode is measured in the days Stopline first receives its money in (a victim's payment, a hard
negative's money-out), not those it started in: an investment scam's first deposit may come days after
the first message, after the measured days, when no one could have alerted on it yet."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.schemas.alerts import Alert


@dataclass(frozen=True)
class Quality:
    people: int
    days: float
    alerts: int  # distinct alerts (an alert and its revisions are one)
    revisions: int  # further revisions of them
    false_alerts: int
    episodes: int  # observable scam episodes
    caught: int
    early: int  # caught before the money left the first payee account
    unobservable: int  # scam episodes Stopline receives no victim payment of
    paid_later: int  # scam episodes started in the measured days whose first payment came after them
    per_typology: dict[str, tuple[int, int]]  # typology → (caught, observable episodes)
    hard_negatives: dict[str, tuple[int, int]]  # kind → (alerted, episodes)
    alerts_per_caught_episode: float
    false_by_kind: dict[str, int]  # false alerts by alert typology

    @property
    def false_per_1000_people_day(self) -> float:
        return self.false_alerts / max(self.people / 1000 * self.days, 1e-9)

    @property
    def recall(self) -> float:
        return self.caught / self.episodes if self.episodes else 0.0

    @property
    def early_share(self) -> float:
        return self.early / self.episodes if self.episodes else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "days": round(self.days, 3),
            "alerts": self.alerts,
            "revisions": self.revisions,
            "false_alerts": self.false_alerts,
            "false_per_1000_people_day": round(self.false_per_1000_people_day, 3),
            "false_by_alert_typology": dict(sorted(self.false_by_kind.items())),
            "episodes": self.episodes,
            "caught": self.caught,
            "recall": round(self.recall, 4),
            "caught_early": self.early,
            "early_share_of_episodes": round(self.early_share, 4),
            "unobservable_episodes": self.unobservable,
            "paid_after_the_window": self.paid_later,
            "per_typology": {
                k: {"caught": c, "episodes": n} for k, (c, n) in sorted(self.per_typology.items())
            },
            "hard_negatives": {
                k: {"alerted": a, "episodes": n, "share": round(a / n, 4) if n else None}
                for k, (a, n) in sorted(self.hard_negatives.items())
            },
            "alerts_per_caught_episode": round(self.alerts_per_caught_episode, 3),
        }


def _time(value: Any) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)


def _measured_from(episode: dict[str, Any]) -> float:
    """When Stopline first received the episode's money; when it started, where the truth does not say
    (or none of its money is received)."""
    first = _time(episode.get("first_money_at"))
    return first if first is not None else _time(episode["started_at"]) or 0.0


def measure(
    alerts: Iterable[tuple[float, Alert]],
    episodes: Sequence[dict[str, Any]],
    benign: Sequence[dict[str, Any]],
    *,
    people: int,
    start: float,
    end: float,
) -> Quality:
    """`alerts`: (when made, alert) for every message; `episodes`, `benign`: the truth records (as the
    offline generator and the simulator's truth file write them). Episodes whose money Stopline first
    receives in [start, end) (those started in it, where the truth does not say) and alerts made in it
    are measured."""
    scam_ref: dict[str, str] = {}
    scams = [e for e in episodes if start <= _measured_from(e) < end]
    paid_later = sum(
        start <= (_time(e["started_at"]) or 0) < end and _measured_from(e) >= end for e in episodes
    )
    for e in episodes:  # an alert in the window may name an earlier episode's event: still true
        for ref in e.get("event_ids", []):
            scam_ref[ref] = e["scenario_id"]
    benign_ref: dict[str, str] = {}
    kinds = {e["scenario_id"]: e["kind"] for e in benign}
    hard = [e for e in benign if start <= _measured_from(e) < end]
    for e in benign:
        for ref in e.get("event_ids", []):
            benign_ref[ref] = e["scenario_id"]
    first_alert: dict[str, float] = {}
    alerts_of: defaultdict[str, set[str]] = defaultdict(set)
    benign_alerted: set[str] = set()
    seen: dict[str, bool] = {}  # alert id → true
    kind_of: dict[str, str] = {}
    revisions = 0
    false_by_kind: Counter[str] = Counter()
    for made, alert in sorted(alerts, key=lambda a: a[0]):
        if not start <= made < end:
            continue
        key = str(alert.alert_id)
        hits = {scam_ref[r] for r in alert.triggering_event_ids if r in scam_ref}
        for sid in hits:
            first_alert[sid] = min(first_alert.get(sid, made), made)
            alerts_of[sid].add(key)
        benign_alerted |= {benign_ref[r] for r in alert.triggering_event_ids if r in benign_ref}
        if key in seen:
            revisions += 1
            seen[key] = seen[key] or bool(hits)
        else:
            seen[key] = bool(hits)
            kind_of[key] = alert.typology
    for key, true in seen.items():
        if not true:
            false_by_kind[kind_of[key]] += 1
    observable = [e for e in scams if e.get("observable", True)]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    early = 0
    for e in observable:
        sid = e["scenario_id"]
        per[e["typology"]][1] += 1
        if sid not in first_alert:
            continue
        per[e["typology"]][0] += 1
        payout = _time(e.get("first_payout_at"))
        early += payout is None or first_alert[sid] < payout
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in hard:
        per_kind[kinds[e["scenario_id"]]][1] += 1
        per_kind[kinds[e["scenario_id"]]][0] += e["scenario_id"] in benign_alerted
    caught = [e["scenario_id"] for e in observable if e["scenario_id"] in first_alert]
    return Quality(
        people=people,
        days=(end - start) / 86_400,
        alerts=len(seen),
        revisions=revisions,
        false_alerts=sum(not t for t in seen.values()),
        episodes=len(observable),
        caught=len(caught),
        early=early,
        unobservable=len(scams) - len(observable),
        paid_later=paid_later,
        per_typology={k: (c, n) for k, (c, n) in per.items()},
        hard_negatives={k: (a, n) for k, (a, n) in per_kind.items()},
        alerts_per_caught_episode=sum(len(alerts_of[s]) for s in caught) / len(caught) if caught else 0.0,
        false_by_kind=dict(false_by_kind),
    )
