"""Training on several feature tables (e.g. a simulated one and a feedback export): concatenated when
their feature columns agree, refused with the file and the columns named when they do not; the first
is the evaluation table, the others are trained on only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import artifact
from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from models.model import ScamModel
from models.training import generic, train
from models.training.constraints import monotonic_constraints
from models.training.table import FeatureTable, TableError, concat, load, load_each, save
from tests import factories as f


def _later(table: FeatureTable, seconds: float) -> FeatureTable:
    table.scored_at = table.scored_at + seconds
    table.occurred_at = table.occurred_at + seconds
    table.event_ref = np.array([f"fb{r}" for r in table.event_ref])
    return table


def test_tables_are_concatenated_in_the_first_ones_column_order(tmp_path: Path) -> None:
    first, second = f.tiny_table(50, seed=1), _later(f.tiny_table(20, seed=2), 3600)
    save(first, tmp_path / "sim.npz")
    # The second written with its columns in another order, as an outside tool might.
    order = tuple(reversed(FEATURE_NAMES))
    save(FeatureTable(order, second.columns(order), *_rest(second)), tmp_path / "feedback.csv")
    both = concat(load_each([tmp_path / "sim.npz", tmp_path / "feedback.csv"]))
    assert both.features == FEATURE_NAMES and len(both) == 70
    assert np.allclose(both.X[:50], first.X) and np.allclose(both.X[50:], second.X, rtol=1e-5)
    assert both.label.tolist() == first.label.tolist() + second.label.tolist()
    assert both.event_ref.tolist() == first.event_ref.tolist() + second.event_ref.tolist()
    assert both.scored_at[50] == pytest.approx(3600)
    # One table is read exactly as before.
    one = concat(load_each([tmp_path / "sim.npz"]))
    expected = load(tmp_path / "sim.npz")
    assert one.features == expected.features and np.array_equal(one.X, expected.X)


def _rest(t: FeatureTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (t.label, t.scored_at, t.occurred_at, t.event_ref, t.episode_id, t.typology)


def test_other_feature_columns_are_a_clear_error(tmp_path: Path) -> None:
    save(f.tiny_table(30), tmp_path / "sim.npz")
    short = f.tiny_table(10)
    kept = FEATURE_NAMES[:-2]
    save(
        FeatureTable((*kept, "new_feature"), np.c_[short.columns(kept), short.X[:, :1]], *_rest(short)),
        tmp_path / "old.csv",
    )
    with pytest.raises(TableError) as err:
        concat(load_each([tmp_path / "sim.npz", tmp_path / "old.csv"]))
    message = str(err.value)
    assert str(tmp_path / "old.csv") in message
    assert repr(list(FEATURE_NAMES[-2:])) in message and "new_feature" in message


def test_train_on_two_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first table is split by time; the second (newer, like a feedback export) is only trained on:
    none of its rows is in the validation slice (thresholds, calibration) nor in the test set."""
    save(f.tiny_table(600, seed=0), tmp_path / "sim.npz")
    save(_later(f.tiny_table(300, seed=1), 600 * 60), tmp_path / "feedback.csv.gz")
    tables = ["--table", str(tmp_path / "sim.npz"), "--table", str(tmp_path / "feedback.csv.gz")]
    where = ["--artifacts", str(tmp_path / "artifacts"), "--reports", str(tmp_path / "reports")]
    # The first table's last 200 minutes. A split of both tables together would hold out the newest
    # 200 minutes instead: feedback rows only, none of the first table's.
    test_days = str((200 * 60 - 30) / 86_400)
    splits: list[generic.Split] = []
    real = generic.split

    def spy(*args: Any, **kwargs: Any) -> generic.Split:
        splits.append(real(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(generic, "split", spy)
    summary = train.main([*tables, *where, "--no-promote", "--version", "v2", "--test-days", test_days])
    (split,) = splits
    assert split.test.event_ref.tolist() == [f"e{i}" for i in range(400, 600)]
    assert split.validation.event_ref.tolist() == [f"e{i}" for i in range(300, 400)]
    assert sorted(split.fit.event_ref.tolist()) == sorted(
        [f"e{i}" for i in range(300)] + [f"fbe{i}" for i in range(300)]
    )
    card = json.loads((Path(summary["artifact"]) / artifact.CARD_FILE).read_text())
    assert card["data"]["files"] == [str(tmp_path / "sim.npz"), str(tmp_path / "feedback.csv.gz")]
    assert (card["data"]["test_rows"], card["data"]["validation_rows"]) == (200, 100)
    assert (card["data"]["fit_rows"], card["data"]["training_only_rows"]) == (600, 300)
    # The scorer's own feature columns, but no active model to take the alert budget from: kept, not live.
    assert card["feature_set_hash"] == FEATURE_SET_HASH
    assert card["not_for_scorer"].startswith("no active model of these features")
    report_text = Path(summary["report"]).read_text()
    assert "600 rows to fit (300 of them from further tables, never tested on)" in report_text

    save(
        FeatureTable(FEATURE_NAMES[1:], f.tiny_table(10).X[:, 1:], *_rest(f.tiny_table(10))),
        tmp_path / "bad.csv",
    )
    with pytest.raises(SystemExit) as exit_:
        train.cli([*tables[:2], "--table", str(tmp_path / "bad.csv"), *where, "--no-promote"])
    assert exit_.value.code == 2
    assert f"{tmp_path / 'bad.csv'}: its feature columns differ" in capsys.readouterr().err


PRIOR = FEATURE_NAMES.index("payee_prior_count")


def test_a_model_of_the_scorers_features_keeps_their_directions_and_the_live_alert_budget(
    tmp_path: Path,
) -> None:
    """Feedback is a biased sample: here its scams go to payees paid many times before. A model trained on
    it must still not let a known payee raise a score (the scorer's constraints), must alert no more of
    the ordinary rows than the active model, and must name only typologies an alert can carry."""
    table = f.tiny_table(1500, seed=0)
    rng = np.random.default_rng(1)
    table.X[:, PRIOR] = np.where(table.label == 1, 19, rng.integers(0, 20, size=len(table.label)))
    table.typology = np.array(["investment" if y else "" for y in table.label])
    save(table, tmp_path / "sim.npz")
    feedback = _later(f.tiny_table(300, seed=2), 1500 * 60)
    feedback.typology = np.array(["call_then_transfer" if y else "" for y in feedback.label])  # an alert kind
    save(feedback, tmp_path / "feedback.csv.gz")
    artifacts = tmp_path / "artifacts"
    where = ["--artifacts", str(artifacts), "--reports", str(tmp_path / "reports")]
    tables = ["--table", str(tmp_path / "sim.npz"), "--table", str(tmp_path / "feedback.csv.gz")]
    first = train.main([*tables, *where, "--version", "first"])
    assert first["promoted"] is False and "no active model" in first["not_promoted"]
    artifact.promote("first", artifacts)  # as if `make train` had released it

    second = train.main([*tables, *where, "--version", "second", "--test-share", "0.3"])

    assert second["promoted"] is True
    live = artifact.load(artifact.active_version(artifacts), artifacts)
    assert live.version == "second"
    assert isinstance(live.model, ScamModel)
    assert list(live.model.trees.monotonic_cst) == monotonic_constraints()
    known = np.zeros((1, len(FEATURE_NAMES)))
    known[0, PRIOR] = 19.0
    assert live.score(known)[0] <= live.score(np.zeros((1, len(FEATURE_NAMES))))[0]
    assert live.contributions(known)[0, PRIOR] <= 0
    # The feedback's "typology" was an alert kind: not learnt, and one scam typology alone is no classifier.
    assert live.model.typology_model is None
    matched = live.card["thresholds"]["alert_matched"]
    assert matched["active"] == "first"
    first_model = artifact.load("first", artifacts)
    validation = generic.split(
        [load(tmp_path / "sim.npz"), load(tmp_path / "feedback.csv.gz")], test_days=None, test_share=0.3
    ).validation
    ordinary = validation.X[validation.label == 0]
    budget = int((first_model.score(ordinary) >= first_model.alert_threshold).sum())
    assert matched["false_rows"] == budget
    assert int((live.score(ordinary) >= live.alert_threshold).sum()) <= budget
    assert live.alert_threshold == matched["threshold"] != live.card["thresholds"]["fpr_1pct"]
