"""Which threshold the model alerts at: the scorer's setting, whatever the card says; 0 falls back to
the card's daily-budget threshold, and the setting outlives a promotion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import artifact
from services.scorer.model_slot import ModelSlot
from services.scorer.settings import ScorerSettings
from tests.scorer.model_factory import save_artifact
from tests.scorer.scenes import inflows, scene, score, stage

# The model knows only long calls from unknown numbers this week: one such call scores a few percent.
FEATURE = "long_unknown_calls_7d"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    save_artifact(tmp_path, "budget", FEATURE, alert=0.02)  # a card tuned to a daily alert budget
    artifact.promote("budget", tmp_path)
    return tmp_path


def test_the_setting_overrides_the_cards_threshold(model_dir: Path) -> None:
    settings = ScorerSettings(model_dir=model_dir, model_alert_threshold=0.5)
    slot = ModelSlot(settings.model_dir, threshold=settings.model_alert_threshold)
    assert (slot.live.alert_threshold, slot.threshold) == (0.02, 0.5)
    card = ModelSlot(model_dir, threshold=ScorerSettings(model_alert_threshold=0).model_alert_threshold)
    assert card.threshold == 0.02


@pytest.mark.parametrize(("setting", "alerts"), [(0.5, 0), (0.0, 1)], ids=["setting", "card"])
def test_the_account_stage_alerts_at_the_configured_threshold(
    model_dir: Path, setting: float, alerts: int
) -> None:
    victim = scene()
    moves = inflows(victim.call(), victim.transfer("800.00"))  # one long call from an unknown number
    account_stage = stage(model_dir, model_alert_threshold=setting)
    found, pending = score(account_stage, moves)
    model_score = account_stage.model.score(np.array([p.row for p in pending]))
    assert 0.02 <= model_score[0] < 0.5  # premise: between the card's threshold and the setting
    assert len(found) == alerts


def test_the_setting_still_applies_after_a_promotion(model_dir: Path) -> None:
    slot = ModelSlot(model_dir, watch_s=0, threshold=0.5)
    save_artifact(model_dir, "looser", FEATURE, alert=0.01)
    artifact.promote("looser", model_dir)
    slot.maybe_swap()
    assert (slot.live.version, slot.threshold) == ("looser", 0.5)
