"""Writing a versioned model artifact (`models.artifact` reads it): the model file, and its card with the
model file's checksum and the feature set the model was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib

from models.artifact import CARD_FILE, MODEL_FILE, Classifier, sha256
from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH


def save(
    model: Classifier,
    card: dict[str, Any],
    root: Path,
    version: str,
    *,
    features: tuple[str, ...] = FEATURE_NAMES,
    feature_set_hash: str = FEATURE_SET_HASH,
) -> Path:
    """Write the artifact directory; the card gets the model file's checksum and the feature set."""
    where = root / version
    where.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, where / MODEL_FILE, compress=3)
    card = {
        **card,
        "version": version,
        "model_file": MODEL_FILE,
        "model_sha256": sha256(where / MODEL_FILE),
        "feature_names": list(features),
        "feature_set_hash": feature_set_hash,
    }
    (where / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return where
