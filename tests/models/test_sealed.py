"""`python -m models.training.sealed`: a released model measured on another evaluation world, by the
training report's own plan and code. On the model's development world (its training seed + 1000) it
gives exactly the report's figures; on another seed, other traffic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models import artifact
from models.training import sealed, simulated
from models.training.fit import FitConfig
from services.simulator.offline import OfflineConfig

SEED = 11
WARMUP_HOURS = "6"


@dataclass(frozen=True)
class Trained:
    artifacts: Path
    reports: Path
    results: dict[str, Any]
    card: dict[str, Any]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A tiny model trained as `make train` trains, with its report: two days of 200 people, then an
    evaluation world of a night and a morning's warm-up (the model's warm-up gate shortened to fit in
    it) and the afternoon and evening measured."""
    where = tmp_path_factory.mktemp("sealed")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STOPLINE_SCORER_MODEL_WARMUP_HOURS", WARMUP_HOURS)
        train = OfflineConfig(population=200, days=2.0, scams_per_day=60, seed=SEED)
        plan = simulated.Plan(
            train,
            simulated.evaluation_world(
                SEED + simulated.DEVELOPMENT_SEED_OFFSET,
                population=200,
                days=0.5,
                warm_days=0.5,
                scams_per_day=60,
                start=train.start + timedelta(days=train.days),
            ),
            eval_warm_days=0.5,
            configs=(FitConfig(max_iter=20),),
            workers=1,
        )
        simulated.run(
            plan,
            version="tiny",
            artifacts=where / "artifacts",
            reports=where / "reports",
            promote=True,
            libraries={},
            cache=where / "cache",
        )
    results = json.loads((where / "reports" / "tiny" / "results.json").read_text())
    return Trained(
        where / "artifacts", where / "reports", results, artifact.read_card(where / "artifacts" / "tiny")
    )


def _measured(trained: Trained, seed: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("STOPLINE_SCORER_MODEL_WARMUP_HOURS", WARMUP_HOURS)
    before = {p: p.read_bytes() for p in trained.artifacts.rglob("*") if p.is_file()}
    out = sealed.main(
        ["--model", "tiny", "--seed", str(seed), "--artifacts", str(trained.artifacts)]
        + ["--reports", str(trained.reports)]
    )
    after = {p: p.read_bytes() for p in trained.artifacts.rglob("*") if p.is_file()}
    assert after == before  # the artifact and ACTIVE as they were
    record: dict[str, Any] = json.loads(Path(out["report"]).with_suffix(".json").read_text())
    return record


def test_the_development_seed_gives_the_training_reports_own_figures(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _measured(trained, SEED + 1000, monkeypatch)
    assert record["kind"] == "development"
    assert record["alert_level"] == trained.results["alert_level"]
    assert record["alert_level"]["alerts"] > 0 and record["alert_level"]["episodes"] > 0
    # The same world: its people, days, episodes and parameters, as the card describes it.
    traffic = {k: v for k, v in record["traffic"].items() if k != "events"}
    assert traffic == {k: v for k, v in trained.card["data"]["evaluation"].items() if k != "warm_days"}
    assert {k for k, v in record["plan_from"].items() if v != "model card"} == {"silent_share"}
    md = (trained.reports / "tiny" / f"development-{SEED + 1000}.md").read_text()
    assert "| scam episodes alerted |" in md and "not a sealed measurement" in md


def test_another_seed_is_other_traffic_measured_alike(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _measured(trained, SEED + 4100, monkeypatch)
    assert record["kind"] == "sealed"
    development = trained.card["data"]["evaluation"]
    assert record["traffic"]["seed"] == SEED + 4100
    assert record["traffic"]["world"] != development["world"]
    assert record["alert_level"] != trained.results["alert_level"]
    assert record["plan"]["population"] == development["population"]
    assert record["alert_level"]["days"] == trained.results["alert_level"]["days"]
    assert record["development"]["alert_level"] == trained.results["alert_level"]
    a, ci = record["alert_level"], record["intervals"]
    assert ci["recall"][0] <= a["recall"] <= ci["recall"][1]
    md = (trained.reports / "tiny" / f"sealed-{SEED + 4100}.md").read_text()
    assert "Beside the training report" in md


def test_a_seed_that_cannot_judge_the_model_is_refused(tmp_path: Path) -> None:
    card = {"version": "b", "data": {"training": {"seed": 7}, "evaluation": {"seed": 1007}}}
    with pytest.raises(sealed.SeedRefused, match="trained on"):
        sealed.kind_of(card, 7, tmp_path)
    assert sealed.kind_of(card, 1007, tmp_path) == "development"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "sealed-5107.json").write_text("{}")
    with pytest.raises(sealed.SeedRefused, match="sealed world of a"):
        sealed.kind_of(card, 5107, tmp_path)
    assert sealed.kind_of({**card, "version": "a"}, 5107, tmp_path) == "sealed"  # its own, again


def test_the_plan_is_the_cards_else_the_train_clis_defaults() -> None:
    recorded = {"population": 500, "days": 3.0, "warm_days": 1.0, "scams_per_day": 9.0, "start": "2026-01-01"}
    plan, source = sealed.plan_of({"data": {"evaluation": recorded}})
    assert (plan["population"], plan["days"], plan["warm_days"], plan["scams_per_day"]) == (
        500,
        2.0,
        1.0,
        9.0,
    )
    assert plan["start"] == "2026-01-01" and source["days"] == "model card"
    plan, source = sealed.plan_of({"data": {"training": {"start": "2026-03-02T00:00:00+08:00", "days": 10}}})
    assert (plan["population"], plan["days"], plan["warm_days"], plan["scams_per_day"]) == (
        10_000,
        2.0,
        1.5,
        60.0,
    )
    assert plan["start"] == "2026-03-12T00:00:00+08:00"
    assert source["population"] == source["start"] == "train CLI default"
