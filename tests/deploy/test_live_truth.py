"""Live precision and recall: alerts matched with the simulator's ground truth by event reference."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from deploy.live_check.truth import load_truth, measure
from streams.schemas.alerts import Alert
from tests import factories as f

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _alert(*refs: str, typology: str = "call_then_transfer") -> Alert:
    return f.alert(typology=typology, triggering_event_ids=list(refs), event_time=NOW, created_at=NOW)


def test_precision_recall_and_cut_short_scenarios(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    lines = [
        {"scenario_id": "s1", "typology": "loan", "event_ids": ["b:1", "b:2"], "victim_payment_ids": ["b:2"]},
        {"scenario_id": "s2", "typology": "loan", "event_ids": ["b:3"], "victim_payment_ids": ["b:4"]},
        {
            "scenario_id": "s3",
            "typology": "mule_fan_in",
            "event_ids": ["b:5"],
            "triggering_event_ids": ["b:5"],
        },
    ]
    truth.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    episodes = load_truth(truth)
    hit, false, repeat = _alert("t:9", "b:2"), _alert("b:99"), _alert("b:5", typology="mule_fan_in")
    quality = measure([hit, false, repeat, repeat], episodes, minutes=2.0)
    out = quality.as_dict()
    assert (out["alerts"], out["true_alerts"], out["precision"]) == (3, 2, round(2 / 3, 4))
    # s2 never sent its money (cut short): it is not counted as missed.
    assert (out["episodes"], out["caught"], out["recall"]) == (2, 2, 1.0)
    assert out["alerts_per_min"] == 1.5 and out["false_alerts_per_min"] == 0.5
    assert out["per_typology"]["loan"] == {"caught": 1, "episodes": 1}
