"""Quality on held-out data: PR-AUC, recall at 1% false-positive rate and at a daily alert budget, recall
per typology, how early scams are caught, and the PR and calibration curves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from models.training.table import FeatureTable

TARGET_FPR = 0.01


@dataclass
class EventScores:
    """Scores per money-out event: the highest of its scorings (a late call, SIM change, link SMS or login
    scores it again)."""

    refs: np.ndarray
    label: np.ndarray
    score: np.ndarray


def per_event(table: FeatureTable, scores: np.ndarray) -> EventScores:
    order = np.argsort(table.event_ref, kind="stable")
    refs = table.event_ref[order]
    starts = np.r_[0, np.flatnonzero(refs[1:] != refs[:-1]) + 1]
    return EventScores(
        refs[starts],
        np.maximum.reduceat(table.label[order], starts),
        np.maximum.reduceat(scores[order], starts),
    )


def lowest_threshold(scores: np.ndarray, allowed: int) -> float:
    """The lowest threshold t with at most `allowed` of `scores` >= t. Calibrated scores have ties (isotonic
    steps), so t is one of the score values, or just above the highest when even that one is too many."""
    values, counts = np.unique(scores, return_counts=True)
    at_or_above = np.cumsum(counts[::-1])[::-1]  # for each distinct value: how many scores are >= it
    fits = np.flatnonzero(at_or_above <= allowed)
    if len(fits) == 0:
        return float(np.nextafter(values[-1], np.inf))
    return float(values[fits[0]])


def threshold_at_fpr(negatives: np.ndarray, fpr: float) -> float:
    """The lowest threshold whose false-positive rate is at most `fpr` (alert when score >= threshold)."""
    return lowest_threshold(negatives, int(np.floor(fpr * len(negatives))))


@dataclass
class Evaluation:
    events: int
    positives: int
    days: float
    pr_auc: float
    roc_auc: float
    threshold_1pct: float
    event_recall_1pct: float
    fpr_1pct: float
    episodes: int
    episode_recall_1pct: float | None  # None: no scam episode in the held-out period
    per_typology_1pct: dict[str, tuple[int, int]]
    early_share_1pct: float | None  # None: no caught episode whose money left
    budget_per_day: float
    threshold_budget: float
    alerts_per_day_budget: float
    episode_recall_budget: float | None
    per_typology_budget: dict[str, tuple[int, int]]
    early_share_budget: float | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def episode_recall(
    table: FeatureTable, scores: np.ndarray, threshold: float, episodes: list[dict[str, Any]]
) -> tuple[float | None, dict[str, tuple[int, int]], float | None]:
    """(share of episodes caught, caught/total per typology, share caught before the money left the first
    payee account). An episode is caught when any of its victims' payments scores at or above threshold.
    The early share counts only caught episodes whose money left (a known first payout): an episode whose
    money never moved on says nothing about speed. None where nothing is counted, never a made-up 0%."""
    first_alert: dict[str, float] = {}
    for i in np.flatnonzero((table.label == 1) & (scores >= threshold)):
        sid = str(table.episode_id[i])
        first_alert[sid] = min(first_alert.get(sid, np.inf), float(table.scored_at[i]))
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    early = left = 0
    for ep in episodes:
        caught = ep["scenario_id"] in first_alert
        per[ep["typology"]][1] += 1
        if not caught:
            continue
        per[ep["typology"]][0] += 1
        payout = ep.get("first_payout_at")
        if payout is None:
            continue
        left += 1
        if first_alert[ep["scenario_id"]] < datetime.fromisoformat(payout).timestamp():
            early += 1
    total = sum(t for _, t in per.values())
    caught_all = sum(c for c, _ in per.values())
    return (
        caught_all / total if total else None,
        {k: (c, t) for k, (c, t) in sorted(per.items())},
        early / left if left else None,
    )


def evaluate(
    table: FeatureTable, scores: np.ndarray, episodes: list[dict[str, Any]], *, budget_per_day: float
) -> Evaluation:
    """`episodes`: the truth records of the scams that started in the held-out period."""
    ev = per_event(table, scores)
    days = max((table.scored_at.max() - table.scored_at.min()) / 86_400, 1e-9)
    negatives = ev.score[ev.label == 0]
    thr = threshold_at_fpr(negatives, TARGET_FPR)
    rec, per, early = episode_recall(table, scores, thr, episodes)
    # The budget threshold: the lowest at which the alerts a day (events at or above it) fit the budget.
    thr_budget = lowest_threshold(ev.score, int(budget_per_day * days))
    rec_b, per_b, early_b = episode_recall(table, scores, thr_budget, episodes)
    return Evaluation(
        events=len(ev.refs),
        positives=int(ev.label.sum()),
        days=round(float(days), 2),
        pr_auc=float(average_precision_score(ev.label, ev.score)),
        roc_auc=float(roc_auc_score(ev.label, ev.score)),
        threshold_1pct=thr,
        event_recall_1pct=float((ev.score[ev.label == 1] >= thr).mean()),
        fpr_1pct=float((negatives >= thr).mean()),
        episodes=len(episodes),
        episode_recall_1pct=rec,
        per_typology_1pct=per,
        early_share_1pct=early,
        budget_per_day=budget_per_day,
        threshold_budget=thr_budget,
        alerts_per_day_budget=float((ev.score >= thr_budget).sum() / days),
        episode_recall_budget=rec_b,
        per_typology_budget=per_b,
        early_share_budget=early_b,
    )


def single_feature_auc(table: FeatureTable) -> list[tuple[str, float]]:
    """Each feature alone as a score (either direction): a leakage check. No single feature should
    separate scams almost perfectly; if one did, it would likely encode the label."""
    out = []
    for i, name in enumerate(table.features):
        column = table.X[:, i]
        if np.all(column == column[0]):
            out.append((name, 0.5))
            continue
        auc = float(roc_auc_score(table.label, column))
        out.append((name, max(auc, 1 - auc)))
    return sorted(out, key=lambda x: -x[1])


@dataclass(frozen=True)
class Ranking:
    """How well scores order the rows, whatever threshold is later chosen."""

    pr_auc: float
    roc_auc: float


def ranking(label: np.ndarray, score: np.ndarray) -> Ranking:
    if len(np.unique(label)) < 2:
        return Ranking(float("nan"), float("nan"))
    return Ranking(float(average_precision_score(label, score)), float(roc_auc_score(label, score)))


@dataclass(frozen=True)
class AtThreshold:
    """What a threshold chosen elsewhere (on the validation slice) does on these rows."""

    threshold: float
    fpr: float  # the false-positive rate actually reached
    recall: float
    alerts: int


def at_threshold(label: np.ndarray, score: np.ndarray, threshold: float) -> AtThreshold:
    alerted = score >= threshold
    negatives, positives = label == 0, label == 1
    return AtThreshold(
        threshold,
        float(alerted[negatives].mean()) if negatives.any() else float("nan"),
        float(alerted[positives].mean()) if positives.any() else float("nan"),
        int(alerted.sum()),
    )


EPISODE_S = 3 * 86_400.0  # as the scorer: a person's alerts within this of each other are one episode


@dataclass(frozen=True)
class RowAlerts:
    """Alerts as the scorer would raise them from these scores, counted on the rows of a table: a
    person's first row at or above the threshold raises an alert, their further ones within EPISODE_S
    update it. (The scorer's rules and warm-up gate are left out: `scorer_replay` has them.)"""

    alerts: int
    false_alerts: int
    people: int
    days: float
    episodes: dict[str, tuple[int, int]]  # scam typology → (caught, episodes with a row here)
    hard_negatives: dict[str, tuple[int, int]]  # kind → (alerted, episodes with a row here)

    @property
    def false_per_1000_people_day(self) -> float:
        return self.false_alerts / max(self.people / 1000 * self.days, 1e-9)

    @property
    def recall(self) -> float:
        caught = sum(c for c, _ in self.episodes.values())
        total = sum(n for _, n in self.episodes.values())
        return caught / total if total else 0.0


def row_alerts(
    table: FeatureTable, person: np.ndarray, scores: np.ndarray, threshold: float, *, people: int, days: float
) -> RowAlerts:
    alerted = scores >= threshold
    order = np.lexsort((table.scored_at, person))
    alerts = false = 0
    last_person, last_at = None, -np.inf
    for i in order[alerted[order]]:
        if person[i] != last_person or table.scored_at[i] - last_at > EPISODE_S:
            alerts += 1
            false += int(table.label[i] == 0)
        last_person, last_at = person[i], table.scored_at[i]
    episodes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hard: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    grouped: dict[str, tuple[bool, str]] = {}
    for i in np.flatnonzero(table.episode_id != ""):
        hit, _ = grouped.get(str(table.episode_id[i]), (False, ""))
        grouped[str(table.episode_id[i])] = (hit or bool(alerted[i]), str(table.typology[i]))
    for hit, typology in grouped.values():
        book = hard if typology.startswith("benign:") else episodes
        name = typology.removeprefix("benign:")
        book[name][0] += hit
        book[name][1] += 1
    return RowAlerts(
        alerts,
        false,
        people,
        days,
        {k: (c, n) for k, (c, n) in sorted(episodes.items())},
        {k: (c, n) for k, (c, n) in sorted(hard.items())},
    )


def threshold_for_false_alerts(
    table: FeatureTable, person: np.ndarray, scores: np.ndarray, target: float, *, people: int, days: float
) -> float:
    """The lowest threshold whose emulated false alerts per 1,000 people a day stay at or under `target`
    (a bisection over the scores: fewer alerts as the threshold rises)."""
    lo, hi = 0.0, float(np.nextafter(scores.max(), np.inf)) if len(scores) else 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        found = row_alerts(table, person, scores, mid, people=people, days=days)
        if found.false_per_1000_people_day <= target:
            hi = mid
        else:
            lo = mid
    return hi
