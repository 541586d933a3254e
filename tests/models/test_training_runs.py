"""`make train`'s plumbing: the report's variants fitted side by side in forked workers, the training
world's table kept for the next run, and rows made to read as a silent payee institution's."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from models.features.account import NEVER_RESTS_MIN
from models.features.vector import FEATURE_NAMES
from models.training import cached, parallel
from models.training.dataset import Dataset
from models.training.fit import FitConfig, trees
from models.training.simulated import PAYEE_OUTFLOW_FEATURES, silence_payees
from tests import factories as f


def _fitted(seed: int) -> tuple[int, float]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.1 * rng.normal(size=400) > 0).astype(int)
    model = trees(X, y, FitConfig(max_iter=10))
    return os.getpid(), float(model.predict_proba(X)[:, 1][y == 1].mean())


def test_jobs_run_in_workers_and_come_back_by_name() -> None:
    jobs = {f"seed {s}": partial(_fitted, s) for s in range(4)}
    done = parallel.run(jobs, workers=2)
    assert list(done) == list(jobs)
    assert all(p > 0.8 for _, p in done.values())  # each fit learnt its table
    assert os.getpid() not in {pid for pid, _ in done.values()}
    assert parallel.run({"seed 0": jobs["seed 0"]}, workers=1)["seed 0"][1] == done["seed 0"][1]


def test_a_table_is_made_once_for_the_same_parts(tmp_path: Path) -> None:
    made: list[int] = []

    def make() -> dict[str, int]:
        made.append(1)
        return {"rows": 3}

    first = cached.kept(tmp_path, "training", make, "config A", 7)
    again = cached.kept(tmp_path, "training", make, "config A", 7)
    other = cached.kept(tmp_path, "training", make, "config B", 7)
    assert first == again == other == {"rows": 3}
    assert len(made) == 2  # config B is another table
    assert len(list(tmp_path.glob("training-*.pickle"))) == 2


def test_silenced_rows_read_as_a_payee_whose_institution_reports_nothing() -> None:
    n = 2000
    X = np.full((n, len(FEATURE_NAMES)), 3.0)
    table = f.feature_table(X, np.zeros(n, dtype=np.int8))
    data = Dataset(table, np.array(["p"] * n), np.array(["bank-a/1"] * n))
    out = silence_payees(data, 0.3, seed=1).table.X
    col = {name: FEATURE_NAMES.index(name) for name in FEATURE_NAMES}
    silenced = out[:, col["payee_outflows_seen"]] == 0
    assert 0.25 < silenced.mean() < 0.35
    assert (out[silenced, col["payee_minutes_money_rests"]] == NEVER_RESTS_MIN).all()
    assert (out[silenced, col["payee_paid_out_24h_log10"]] == 0).all()
    others = [i for name, i in col.items() if name not in PAYEE_OUTFLOW_FEATURES]
    assert (out[:, others] == 3.0).all()  # fan-in, the person's side: what other institutions report
    assert (out[~silenced] == 3.0).all() and (table.X == 3.0).all()  # the rest, and the input, untouched
