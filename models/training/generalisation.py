"""Model variants trained on the same split as the model and measured on the evaluation traffic's test
days: plain baselines, feature-group ablations, leave-one-typology-out, held-out parameter ranges and a
shuffled-label check. Each variant is fitted on the fitting rows (or a part of them), calibrated and given
its threshold on the validation slice exactly as the model is (the same false-alert target), and then
measured on the test rows it never saw: how much of what the model does survives what it was not shown."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from models.features.account import PAYEE_FEATURES
from models.features.vector import AMOUNTS, BANK, FEATURE_NAMES, SEQUENCES, TELECOM
from models.training.constraints import monotonic_constraints
from models.training.dataset import BENIGN, Dataset
from models.training.evaluate import RowAlerts, ranking, row_alerts, threshold_for_false_alerts
from models.training.fit import FitConfig, logistic_regression, random_forest, trees

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    fit: Dataset  # what models learn from (negatives subsampled)
    validation: Dataset  # the later slice of the training traffic: calibration, thresholds, selection
    test: Dataset  # the evaluation traffic's measured days
    validation_people: int
    validation_days: float
    test_people: int
    test_days: float
    target: float  # false alerts per 1,000 people a day the thresholds aim at, on the validation slice


@dataclass(frozen=True)
class Variant:
    name: str
    pr_auc: float
    roc_auc: float
    threshold: float
    alerts: RowAlerts  # on the test rows, at the validation threshold

    def as_dict(self) -> dict[str, Any]:
        a = self.alerts
        return {
            "name": self.name,
            "pr_auc": _r(self.pr_auc),
            "roc_auc": _r(self.roc_auc),
            "recall": _r(a.recall),
            "false_per_1000_people_day": _r(a.false_per_1000_people_day),
            "per_typology": {k: list(v) for k, v in a.episodes.items()},
            "hard_negatives": {k: list(v) for k, v in a.hard_negatives.items()},
        }


def _r(x: float) -> float | None:
    return None if x != x else round(x, 4)


Scorer = Callable[[np.ndarray], np.ndarray]


def measured(name: str, score: Scorer, s: Split) -> Variant:
    """Threshold from the validation slice at the split's target, figures on the test rows."""
    val = score(s.validation.table.X)
    threshold = threshold_for_false_alerts(
        s.validation.table,
        s.validation.person,
        val,
        s.target,
        people=s.validation_people,
        days=s.validation_days,
    )
    test = score(s.test.table.X)
    r = ranking(s.test.table.label, test)
    alerts = row_alerts(s.test.table, s.test.person, test, threshold, people=s.test_people, days=s.test_days)
    log.info(
        "%s: PR-AUC %.3f, recall %.3f, %.2f false/1000/day",
        name,
        r.pr_auc,
        alerts.recall,
        alerts.false_per_1000_people_day,
    )
    return Variant(name, r.pr_auc, r.roc_auc, threshold, alerts)


def _columns(features: tuple[str, ...]) -> np.ndarray:
    return np.array([FEATURE_NAMES.index(f) for f in features])


@dataclass(frozen=True)
class Columns:
    """A fitted model over some of the feature columns, as a Scorer of full rows. Picklable: variants are
    fitted in worker processes (`models.training.parallel`) and measured in the parent."""

    model: Any
    columns: np.ndarray

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X[:, self.columns])[:, 1])


def trees_on(
    fit: Dataset,
    features: tuple[str, ...],
    config: FitConfig,
    rows: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> Columns:
    """Trees over `features` only, fitted on the fitting rows (or those of `rows`)."""
    cols = _columns(features)
    table = fit.table
    mask = np.ones(len(table), dtype=bool) if rows is None else rows
    y = table.label if labels is None else labels
    return Columns(trees(table.X[mask][:, cols], y[mask], config, monotonic_constraints(features)), cols)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "logistic regression (baseline)": logistic_regression,
    "random forest (baseline)": random_forest,
}
ABLATIONS: dict[str, tuple[str, ...]] = {
    "telecom only": TELECOM,
    "bank and payment only (no telecom, no sequences)": BANK,
    "no amounts": tuple(f for f in FEATURE_NAMES if f not in AMOUNTS),
    "no sequence features": tuple(f for f in FEATURE_NAMES if f not in SEQUENCES),
    "no payee-side features": tuple(f for f in FEATURE_NAMES if f not in PAYEE_FEATURES),
}
HELD_OUT = "trained on the middle of the ranges"
SHUFFLED = "shuffled labels"
INNER = 0.5  # the middle half (in log scale) of a parameter's range is all the held-out-range model sees


def without(typology: str) -> str:
    return f"without {typology}"


def _baseline(fit: Dataset, learn: Callable[[np.ndarray, np.ndarray], Any]) -> Columns:
    return Columns(learn(fit.table.X, fit.table.label), _columns(FEATURE_NAMES))


def _middle(
    fit: Dataset, params: dict[str, dict[str, float]], ranges: dict[str, dict[str, tuple[float, float]]]
) -> np.ndarray:
    """The fitting rows the held-out-range model keeps: every ordinary row, and the scam rows of episodes
    whose amounts and call lengths lie in the middle of their ranges."""
    table = fit.table
    return np.array(
        [
            y == 0 or _inside(params, ranges, str(e), str(t))
            for y, e, t in zip(table.label, table.episode_id, table.typology, strict=True)
        ]
    )


def fits(
    fit: Dataset,
    config: FitConfig,
    typologies: list[str],
    params: dict[str, dict[str, float]],
    ranges: dict[str, dict[str, tuple[float, float]]],
) -> dict[str, Callable[[], Columns]]:
    """Every variant's fit, by name, as a job of its own (a fit needs only the fitting rows), longest
    first: one per left-out typology, the ablations, the held-out ranges, the baselines, the shuffled
    labels. `measured`, `left_out`, `held_out_ranges` and `shuffled_labels` measure them on the split."""
    table = fit.table
    jobs: dict[str, Callable[[], Columns]] = {
        without(t): partial(trees_on, fit, FEATURE_NAMES, config, table.typology != t) for t in typologies
    }
    jobs.update({name: partial(trees_on, fit, features, config) for name, features in ABLATIONS.items()})
    jobs[HELD_OUT] = partial(trees_on, fit, FEATURE_NAMES, config, _middle(fit, params, ranges))
    jobs.update({name: partial(_baseline, fit, learn) for name, learn in BASELINES.items()})
    permuted = np.random.default_rng(0).permutation(table.label)
    jobs[SHUFFLED] = partial(trees_on, fit, FEATURE_NAMES, replace(config, max_iter=60), None, permuted)
    return jobs


def left_out(s: Split, typology: str, score: Scorer) -> dict[str, Any]:
    """The model trained and thresholded without any of the typology's scam payments: how much of it is
    still caught, and that model's false alerts (its threshold is set without the typology too)."""
    kept_val = s.validation.table.typology != typology
    v = measured(without(typology), score, replace(s, validation=s.validation.subset(kept_val)))
    caught, total = v.alerts.episodes.get(typology, (0, 0))
    return {
        "caught": caught,
        "episodes": total,
        "recall": _r(caught / total) if total else None,
        "false_per_1000_people_day": _r(v.alerts.false_per_1000_people_day),
    }


def _inside(
    params: dict[str, dict[str, float]],
    ranges: dict[str, dict[str, tuple[float, float]]],
    episode: str,
    typology: str,
) -> bool:
    for name in ("amount_total", "call_minutes"):
        value = params.get(episode, {}).get(name)
        bounds = ranges.get(typology, {}).get(name)
        if value is None or bounds is None:
            continue
        lo, hi = (math.log(b) for b in bounds)
        margin = (hi - lo) * (1 - INNER) / 2
        if not lo + margin <= math.log(value) <= hi - margin:
            return False
    return True


def held_out_ranges(
    s: Split,
    score: Scorer,
    params: dict[str, dict[str, float]],
    ranges: dict[str, dict[str, tuple[float, float]]],
) -> dict[str, Any]:
    """The model trained only on scam episodes whose amounts and call lengths lie in the middle of their
    ranges (`fits`), tested on episodes inside and outside that middle (`params`: episode id → drawn
    parameters)."""
    keep = _middle(s.fit, params, ranges)
    v = measured(HELD_OUT, score, s)
    test = s.test.table
    groups: dict[str, list[int]] = {"inside": [0, 0], "outside": [0, 0]}
    val = score(test.X) >= v.threshold
    by_episode: dict[str, tuple[bool, str]] = {}
    for i in np.flatnonzero(test.label == 1):
        e, t = str(test.episode_id[i]), str(test.typology[i])
        by_episode[e] = (by_episode.get(e, (False, t))[0] or bool(val[i]), t)
    for episode, (hit, typology) in by_episode.items():
        where = "inside" if _inside(params, ranges, episode, typology) else "outside"
        groups[where][0] += hit
        groups[where][1] += 1
    return {
        "trained_on_rows": int(keep.sum()),
        "dropped_scam_rows": int((~keep).sum()),
        "inside": {"caught": groups["inside"][0], "episodes": groups["inside"][1]},
        "outside": {"caught": groups["outside"][0], "episodes": groups["outside"][1]},
        "false_per_1000_people_day": _r(v.alerts.false_per_1000_people_day),
    }


def shuffled_labels(s: Split, score: Scorer) -> float:
    """PR-AUC on the test rows of trees fitted on permuted labels (`fits`): near the base rate, or the
    pipeline leaks the label."""
    return ranking(s.test.table.label, score(s.test.table.X)).pr_auc


def coverage(s: Split, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Episodes by whether Stopline sees the payee's outflows (its institution reports), at the model's
    threshold: the payee-side features are missing for the others."""
    test = s.test.table
    seen_col = FEATURE_NAMES.index("payee_outflows_seen")
    groups: dict[str, dict[str, list[int]]] = {"payee reports": {}, "payee silent": {}}
    by_episode: dict[str, tuple[bool, bool, str]] = {}
    for i in np.flatnonzero(test.episode_id != ""):
        e, t = str(test.episode_id[i]), str(test.typology[i])
        hit, seen, _ = by_episode.get(e, (False, False, t))
        by_episode[e] = (hit or bool(scores[i] >= threshold), seen or bool(test.X[i, seen_col]), t)
    for hit, seen, typology in by_episode.values():
        kind = "hard_negatives" if typology.startswith(BENIGN) else "scams"
        book = groups["payee reports" if seen else "payee silent"].setdefault(kind, [0, 0])
        book[0] += hit
        book[1] += 1
    return {k: {kind: {"alerted": a, "episodes": n} for kind, (a, n) in v.items()} for k, v in groups.items()}
