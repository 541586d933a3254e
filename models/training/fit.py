"""Training on a feature table: gradient-boosted trees, then a logistic calibration on a later time slice;
and the plain baselines every model is compared with on the same split (logistic regression, a random
forest).

The table is split by time, never at random: the model is fitted on the earlier part and calibrated on the
later part of the training period, so that calibration sees data the trees did not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from models.model import ScamModel
from models.training.table import FeatureTable

BASELINE_ROWS = 100_000  # each forest tree sees a bootstrap sample of at most this many rows


@dataclass(frozen=True)
class FitConfig:
    max_iter: int = 100
    learning_rate: float = 0.15
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    calibration_share: float = 0.25  # the latest quarter of the training period calibrates
    seed: int = 0


def time_split(table: FeatureTable, share_last: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks (earlier, later) splitting the table at the time that leaves `share_last` of rows later."""
    cut = float(np.quantile(table.scored_at, 1.0 - share_last))
    later = table.scored_at >= cut
    return ~later, later


def trees(
    X: np.ndarray, y: np.ndarray, config: FitConfig, monotonic: list[int] | None = None
) -> HistGradientBoostingClassifier:
    if len(np.unique(y)) < 2:
        raise ValueError("the rows to fit on need both labels")
    model = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        monotonic_cst=monotonic,
        early_stopping=False,
        random_state=config.seed,
    )
    return model.fit(X, y)


def calibrate(
    model: HistGradientBoostingClassifier,
    X: np.ndarray,
    y: np.ndarray,
    typology: HistGradientBoostingClassifier | None = None,
) -> ScamModel:
    """Calibration of fitted trees' raw score by a logistic map (Platt scaling), on rows they did not see."""
    if len(np.unique(y)) < 2:
        raise ValueError("the calibration rows need both labels")
    raw = model.decision_function(X).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(raw, y)
    slope = float(platt.coef_[0, 0])
    if slope <= 0:
        # A falling map would turn every ranking of the trees, and every monotonic constraint, around.
        raise ValueError("the trees rank the calibration rows no better than chance: nothing to calibrate")
    return ScamModel(model, slope, float(platt.intercept_[0]), typology)


def typology_classifier(
    X: np.ndarray, typology: np.ndarray, config: FitConfig
) -> HistGradientBoostingClassifier | None:
    """Which scam it is, learnt on the scam rows alone (None with fewer than two typologies)."""
    if len(np.unique(typology)) < 2:
        return None
    model = HistGradientBoostingClassifier(
        max_iter=80,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=config.seed,
    )
    return model.fit(X, typology)


def fit(table: FeatureTable, features: tuple[str, ...], config: FitConfig = FitConfig()) -> ScamModel:
    """A calibrated classifier over `features` (columns taken by name from the table)."""
    if len(np.unique(table.label)) < 2:
        raise ValueError("the table needs both labels to train on")
    fit_mask, cal_mask = time_split(table, config.calibration_share)
    if len(np.unique(table.label[cal_mask])) < 2 or len(np.unique(table.label[fit_mask])) < 2:
        raise ValueError("both time slices (fit and calibration) need both labels")
    X = table.columns(features)
    return calibrate(trees(X[fit_mask], table.label[fit_mask], config), X[cal_mask], table.label[cal_mask])


def logistic_regression(X: np.ndarray, y: np.ndarray) -> Pipeline:
    """Standardised features, class-balanced weights."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    return model.fit(X, y)


def random_forest(X: np.ndarray, y: np.ndarray, seed: int = 0) -> RandomForestClassifier:
    """100 trees, class-balanced, each on a bootstrap sample of up to BASELINE_ROWS rows."""
    model = RandomForestClassifier(
        n_estimators=100,
        min_samples_leaf=5,
        class_weight="balanced_subsample",
        max_samples=min(1.0, BASELINE_ROWS / max(len(y), 1)),
        n_jobs=1,
        random_state=seed,
    )
    return model.fit(X, y)
