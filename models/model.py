"""What a model artifact holds and the scorer calls: gradient-boosted trees over FEATURE_NAMES, the
logistic map from their raw score to a calibrated probability, a classifier of the scam's typology, and
the attribution of a score to the features that made it.

Attribution follows each tree's decision path (as `Path`): a split on feature f moves the tree's expected
value from the node's to the child's, and that change is f's. Node expected values are the averages of
their leaves weighted by the training rows that reached them, so for every row the contributions add up
exactly to its raw score minus the trees' expected raw score over the training rows (`expected_raw`).
A feature under a monotonic constraint can only contribute in its direction: a split on it sends lower
values to a child whose leaves all score no higher than the other's, so a known payee or an old SIM
card never raises a score. Cost: one walk down each tree, a few milliseconds per alerted row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier


@dataclass(frozen=True)
class _Tree:
    """One tree as plain lists (a walk in Python over lists is faster than over a numpy record array)."""

    feature: list[int]
    threshold: list[float]
    missing_left: list[bool]
    left: list[int]
    right: list[int]
    leaf: list[bool]
    expected: list[float]  # the node's expected value over the training rows that reached it


def _tree(nodes: np.ndarray) -> _Tree:
    leaf = nodes["is_leaf"].astype(bool).tolist()
    left, right = nodes["left"].tolist(), nodes["right"].tolist()
    count = nodes["count"].astype(np.float64).tolist()
    expected = nodes["value"].astype(np.float64).tolist()
    # Children have higher indices than their parent: one backward pass fills the averages bottom-up.
    for i in range(len(leaf) - 1, -1, -1):
        if not leaf[i]:
            a, b = left[i], right[i]
            total = count[a] + count[b]
            expected[i] = (count[a] * expected[a] + count[b] * expected[b]) / total if total else 0.0
    return _Tree(
        nodes["feature_idx"].tolist(),
        nodes["num_threshold"].astype(np.float64).tolist(),
        nodes["missing_go_to_left"].astype(bool).tolist(),
        left,
        right,
        leaf,
        expected,
    )


class Path:
    """Per-row contributions of each feature to the trees' raw score (see the module docstring)."""

    def __init__(self, trees: HistGradientBoostingClassifier) -> None:
        self.trees = [_tree(predictors[0].nodes) for predictors in trees._predictors]  # noqa: SLF001
        baseline = float(np.ravel(trees._baseline_prediction)[0])  # noqa: SLF001
        self.expected_raw = baseline + sum(t.expected[0] for t in self.trees)
        self.n_features = int(trees.n_features_in_)

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), self.n_features))
        for r, row in enumerate(rows.tolist()):
            phi = out[r]
            for t in self.trees:
                node = 0
                while not t.leaf[node]:
                    f = t.feature[node]
                    x = row[f]
                    if x != x:  # NaN
                        child = t.left[node] if t.missing_left[node] else t.right[node]
                    else:
                        child = t.left[node] if x <= t.threshold[node] else t.right[node]
                    phi[f] += t.expected[child] - t.expected[node]
                    node = child
        return out


class ScamModel:
    """The scorer's model: `predict_proba` (calibrated), `raw`, `typology`, `contributions`.

    Calibration is a logistic map of the raw score (`slope`, `intercept`, fitted on rows the trees did
    not see): strictly increasing, so it keeps every distinction the trees make, where isotonic steps
    tie whole ranges of scores and a threshold can only fall between steps."""

    def __init__(
        self,
        trees: HistGradientBoostingClassifier,
        slope: float,
        intercept: float,
        typology: HistGradientBoostingClassifier | None = None,
    ) -> None:
        self.trees = trees
        self.slope = slope
        self.intercept = intercept
        self.typology_model = typology
        self._path: Path | None = None

    def raw(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.trees.decision_function(X), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        z = self.slope * self.raw(np.asarray(X, dtype=np.float64)) + self.intercept
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        return np.column_stack([1.0 - p, p])

    def typology(self, X: np.ndarray) -> list[tuple[str, float]]:
        """The most likely scam typology of each row and its probability among the typologies."""
        if self.typology_model is None or len(X) == 0:
            return [("", 0.0)] * len(X)
        proba = self.typology_model.predict_proba(X)
        best = proba.argmax(axis=1)
        classes = self.typology_model.classes_
        return [(str(classes[b]), float(proba[i, b])) for i, b in enumerate(best)]

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self.trees)
        return self._path

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per row, each feature's share of its raw score's departure from `expected_raw`."""
        return self.path.contributions(np.asarray(X, dtype=np.float64))

    @property
    def expected_raw(self) -> float:
        return self.path.expected_raw

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_path": None}  # rebuilt from the trees after loading
