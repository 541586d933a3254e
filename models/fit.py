"""Training on a feature table: gradient-boosted trees, then isotonic calibration on a later time slice.

The table is split by time, never at random: the model is fitted on the earlier part and calibrated on the
later part of the training period, so that calibration sees data the trees did not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator

from models.table import FeatureTable


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


def fit(
    table: FeatureTable, features: tuple[str, ...], config: FitConfig = FitConfig()
) -> CalibratedClassifierCV:
    """A calibrated classifier over `features` (columns taken by name from the table)."""
    if len(np.unique(table.label)) < 2:
        raise ValueError("the table needs both labels to train on")
    fit_mask, cal_mask = time_split(table, config.calibration_share)
    if len(np.unique(table.label[cal_mask])) < 2 or len(np.unique(table.label[fit_mask])) < 2:
        raise ValueError("both time slices (fit and calibration) need both labels")
    X = table.columns(features)
    trees = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        early_stopping=False,
        random_state=config.seed,
    )
    trees.fit(X[fit_mask], table.label[fit_mask])
    calibrated = CalibratedClassifierCV(FrozenEstimator(trees), method="isotonic")
    calibrated.fit(X[cal_mask], table.label[cal_mask])
    return calibrated
