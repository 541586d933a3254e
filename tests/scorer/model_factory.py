"""Small model artifacts for the scorer's tests: calibrated models that each know one feature, saved
through `models.artifact` as training saves them, so loading, checksums and swaps are the real ones."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY

from models.artifact import Classifier
from models.features.vector import FEATURE_NAMES
from models.training import publish
from models.training.fit import FitConfig, fit
from tests import factories as f

INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


@functools.cache
def one_feature_model(feature: str) -> Classifier:
    """A calibrated model whose only signal is `feature`: fraud when it is well above 1 (training values
    are standard normal). Every other column is constant in training, so the trees cannot split on it:
    any row with `feature` at 0 or below gets the same near-zero score, whatever else it holds."""
    n = 3000
    rng = np.random.default_rng(INDEX[feature])
    X = np.zeros((n, len(FEATURE_NAMES)))
    X[:, INDEX[feature]] = rng.normal(size=n)
    label = (X[:, INDEX[feature]] + 0.3 * rng.normal(size=n) > 1.2).astype(np.int8)
    return fit(f.feature_table(X, label), FEATURE_NAMES, FitConfig(max_iter=20))


def save_artifact(root: Path, version: str, feature: str, *, alert: float = 0.5) -> Path:
    """An artifact of `one_feature_model(feature)` with the card's alert threshold `alert`."""
    card = {"thresholds": {"alert": alert}}
    return publish.save(one_feature_model(feature), card, root, version)


def row(**values: float) -> list[float]:
    """A feature row: 0 everywhere except the named features."""
    out = [0.0] * len(FEATURE_NAMES)
    for name, value in values.items():
        out[INDEX[name]] = value
    return out


def sample(name: str, **labels: str) -> float:
    """A metric's current value in the default registry; 0 for a labelled child not created yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
