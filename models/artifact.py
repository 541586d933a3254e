"""Versioned model artifacts, as the scorer loads them: `models/artifacts/<version>/` holds `model.joblib`,
`card.json` (the model card, with the model file's SHA-256 and the feature-set hash) and `card.md`.
`ACTIVE` names the version the live scorer uses. Loading refuses, with a clear message, a missing or
altered file and an artifact built for other features than the code computes: a wrong score is worse
than no start. Training writes them (`models.training.publish`)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, get_args

import joblib
import numpy as np

from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from streams.schemas.alerts import ScamTypology

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ACTIVE = "ACTIVE"
MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"


class ArtifactError(RuntimeError):
    """The artifact cannot be used; the message says why and what to do."""


class Classifier(Protocol):
    def predict_proba(self, X: Any) -> np.ndarray: ...

    def contributions(self, X: np.ndarray) -> np.ndarray: ...

    def typology(self, X: np.ndarray) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class Artifact:
    version: str
    path: Path
    model: Classifier
    card: dict[str, Any]

    @property
    def alert_threshold(self) -> float:
        return float(self.card["thresholds"]["alert"])

    def score(self, rows: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(rows)[:, 1]

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Each feature's share of each row's raw score departing from the model's expected score."""
        return self.model.contributions(rows)

    def typology(self, rows: np.ndarray) -> list[tuple[str, float]]:
        return self.model.typology(rows)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(where: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((where / CARD_FILE).read_text())
    return card


def active_version(root: Path = ARTIFACTS) -> str:
    pointer = root / ACTIVE
    if not pointer.is_file():
        raise ArtifactError(f"no active model: {pointer} is missing (run `make train`, or set the version)")
    version = pointer.read_text().strip()
    if not version:
        raise ArtifactError(f"{pointer} is empty: it must name a version directory under {root}")
    return version


def promote(version: str, root: Path = ARTIFACTS) -> None:
    """Make `version` the active model: checked first, then the pointer replaced atomically, so a scorer
    watching it never reads half a name."""
    load(version, root)
    tmp = root / f".{ACTIVE}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / ACTIVE)


def load(version: str, root: Path = ARTIFACTS) -> Artifact:
    where = root / version
    card_path, model_path = where / CARD_FILE, where / MODEL_FILE
    if not where.is_dir():
        raise ArtifactError(f"model {version!r}: no directory {where}")
    if not card_path.is_file():
        raise ArtifactError(f"model {version!r}: the model card {card_path} is missing")
    try:
        card = json.loads(card_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(
            f"model {version!r}: the model card {card_path} is not valid JSON: {exc}"
        ) from exc
    if not isinstance(card, dict):
        raise ArtifactError(f"model {version!r}: the model card {card_path} is not a JSON object")
    if not model_path.is_file():
        raise ArtifactError(f"model {version!r}: the model file {model_path} is missing")
    if card.get("feature_set_hash") != FEATURE_SET_HASH or card.get("feature_names") != list(FEATURE_NAMES):
        why = card.get("not_for_scorer")
        raise ArtifactError(
            f"model {version!r} was built for feature set {card.get('feature_set_hash')!r}, but this code "
            f"computes {FEATURE_SET_HASH!r}: "
            + (why if why else "retrain (`make train`) or run the code it was built with")
        )
    actual = sha256(model_path)
    if actual != card.get("model_sha256"):
        raise ArtifactError(
            f"model {version!r}: {model_path} has SHA-256 {actual[:12]}…, the card says "
            f"{str(card.get('model_sha256'))[:12]}…: the file was altered or truncated"
        )
    try:
        # The checksum above ties the file to its card: only a file the training step wrote is unpickled.
        model = joblib.load(model_path)
        probe = np.zeros((1, len(FEATURE_NAMES)))
        # Scores, reasons and typology: a model that cannot give all three cannot serve the scorer.
        model.predict_proba(probe)
        model.contributions(probe)
        model.typology(probe)
    except Exception as exc:
        raise ArtifactError(
            f"model {version!r}: {model_path} cannot be used: {type(exc).__name__}: {exc}"
        ) from exc
    # An alert names one of the scam typologies its schema knows: a classifier trained on other labels
    # would make every alert it names unsendable, and the scorer's stage stop on it.
    kinds = getattr(getattr(model, "typology_model", None), "classes_", [])
    unknown = sorted({str(k) for k in kinds} - set(get_args(ScamTypology)))
    if unknown:
        raise ArtifactError(
            f"model {version!r}: its typology classifier names {unknown}, which no alert can carry"
        )
    return Artifact(version, where, model, card)
