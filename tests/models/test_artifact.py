"""Training on a tiny feature table, the artifact round trip, and clear errors for unusable artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import artifact
from models.features.vector import FEATURE_NAMES
from models.training import publish
from models.training.evaluate import lowest_threshold, threshold_at_fpr
from models.training.fit import FitConfig, fit, typology_classifier
from models.training.table import load, save
from tests import factories as f


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("artifacts")
    table = f.tiny_table()
    model = fit(table, FEATURE_NAMES, FitConfig(max_iter=20))
    card = {
        "typical_values": np.median(table.X, axis=0).tolist(),
        "thresholds": {"alert": 0.5, "fpr_1pct": 0.4},
    }
    publish.save(model, card, root, "v1")
    artifact.promote("v1", root)
    return root, "v1"


def test_table_round_trips_as_npz_and_csv(tmp_path: Path) -> None:
    table = f.tiny_table(50)
    for name in ("t.npz", "t.csv.gz"):
        save(table, tmp_path / name)
        back = load(tmp_path / name)
        assert back.features == table.features
        assert np.allclose(back.X, table.X, rtol=1e-5)
        assert (back.label == table.label).all() and list(back.event_ref) == list(table.event_ref)


def test_trained_artifact_loads_and_scores(trained: tuple[Path, str]) -> None:
    root, version = trained
    assert artifact.active_version(root) == version
    loaded = artifact.load(version, root)
    scores = loaded.score(np.zeros((3, len(FEATURE_NAMES))))
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 1)).all()
    assert loaded.alert_threshold == 0.5


def _copy(trained: tuple[Path, str], tmp_path: Path) -> Path:
    import shutil

    root, version = trained
    shutil.copytree(root / version, tmp_path / version)
    return tmp_path


def test_missing_model_file_is_a_clear_error(trained: tuple[Path, str], tmp_path: Path) -> None:
    root = _copy(trained, tmp_path)
    (root / "v1" / artifact.MODEL_FILE).unlink()
    with pytest.raises(artifact.ArtifactError, match="model file .* is missing"):
        artifact.load("v1", root)
    with pytest.raises(artifact.ArtifactError, match="no directory"):
        artifact.load("v2", root)
    with pytest.raises(artifact.ArtifactError, match="no active model"):
        artifact.active_version(root)


def test_altered_model_file_fails_the_checksum(trained: tuple[Path, str], tmp_path: Path) -> None:
    root = _copy(trained, tmp_path)
    path = root / "v1" / artifact.MODEL_FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(artifact.ArtifactError, match="altered or truncated"):
        artifact.load("v1", root)


def test_corrupt_model_file_with_matching_card_is_refused(trained: tuple[Path, str], tmp_path: Path) -> None:
    root = _copy(trained, tmp_path)
    path = root / "v1" / artifact.MODEL_FILE
    path.write_bytes(b"not a model at all")
    card_path = root / "v1" / artifact.CARD_FILE
    card = json.loads(card_path.read_text())
    card["model_sha256"] = artifact.sha256(path)
    card_path.write_text(json.dumps(card))
    with pytest.raises(artifact.ArtifactError, match="cannot be used"):
        artifact.load("v1", root)


def test_other_feature_set_is_refused(trained: tuple[Path, str], tmp_path: Path) -> None:
    root = _copy(trained, tmp_path)
    card_path = root / "v1" / artifact.CARD_FILE
    card = json.loads(card_path.read_text())
    card["feature_set_hash"] = "0123456789abcdef"
    card_path.write_text(json.dumps(card))
    with pytest.raises(artifact.ArtifactError, match="built for feature set"):
        artifact.load("v1", root)
    card_path.write_text("{not json")
    with pytest.raises(artifact.ArtifactError, match="not valid JSON"):
        artifact.load("v1", root)


def test_thresholds_respect_ties_and_the_allowed_count() -> None:
    negatives = np.array([0.1] * 90 + [0.5] * 9 + [0.9])
    assert threshold_at_fpr(negatives, 0.01) == 0.9  # one false positive of 100 allowed
    assert threshold_at_fpr(negatives, 0.10) == 0.5  # ten allowed: 0.5 and 0.9
    assert lowest_threshold(np.array([0.7, 0.7, 0.7]), 1) > 0.7  # a tie bigger than allowed: none pass


def test_a_typology_no_alert_can_carry_is_refused(tmp_path: Path) -> None:
    """An alert names its scam typology from a fixed list: a model naming another would stop the scorer."""
    table = f.tiny_table()
    model = fit(table, FEATURE_NAMES, FitConfig(max_iter=20))
    kinds = np.array([("investment", "call_then_transfer")[i % 2] for i in range(len(table.label))])
    model.typology_model = typology_classifier(table.X, kinds, FitConfig())
    publish.save(model, {"thresholds": {"alert": 0.5}}, tmp_path, "v1")
    with pytest.raises(
        artifact.ArtifactError, match=r"names \['call_then_transfer'\], which no alert can carry"
    ):
        artifact.load("v1", tmp_path)
