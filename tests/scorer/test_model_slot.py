"""The live model slot: the shadow is scored beside the live model without changing its scores, promotion
through the ACTIVE pointer swaps the model between batches, a bad artifact is refused while the current
one keeps scoring, and a pinned version never moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import artifact
from services.scorer.model_slot import ModelSlot
from tests.scorer.model_factory import row, sample, save_artifact

COMPARED = "stopline_scorer_shadow_compared_total"
DISAGREED = "stopline_scorer_shadow_disagreed_total"
DIFF = "stopline_scorer_shadow_score_diff"
SWAPS = "stopline_scorer_model_swaps_total"
MODEL = "stopline_scorer_model"

# The live model knows only fan-in into the payee, the shadow only long calls from unknown numbers.
LIVE, SHADOW = "payee_payers_1h", "long_unknown_calls_7d"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    save_artifact(tmp_path, "v1", LIVE)
    artifact.promote("v1", tmp_path)
    return tmp_path


def swaps() -> tuple[float, float]:
    return sample(SWAPS, outcome="promoted"), sample(SWAPS, outcome="refused")


def test_shadow_leaves_live_scores_alone_and_counts_each_disagreement(root: Path) -> None:
    save_artifact(root, "s1", SHADOW)
    designed = (
        [row(**{LIVE: 4, SHADOW: 4})] * 1  # both alert
        + [row(**{LIVE: 4})] * 3  # only the live model alerts
        + [row(**{SHADOW: 4})] * 2  # only the shadow would
        + [row()] * 4  # neither
    )
    rows = np.array(designed)
    live_alone = ModelSlot(root, watch_s=0).score(rows)
    shadow_alone = artifact.load("s1", root).score(rows)
    # The premise: each model alerts (card threshold 0.5) exactly where it was designed to.
    assert list(live_alone >= 0.5) == [True] * 4 + [False] * 6
    assert list(shadow_alone >= 0.5) == [True, False, False, False, True, True] + [False] * 4

    slot = ModelSlot(root, shadow="s1", watch_s=0)
    before = _agreement()
    scores = slot.score(rows)
    after = _agreement()

    np.testing.assert_array_equal(scores, live_alone)  # what alerts is the live model's, untouched
    compared, live_only, shadow_only, diffs, diff_sum = (a - b for a, b in zip(after, before, strict=True))
    assert (compared, live_only, shadow_only, diffs) == (10, 3, 2, 10)
    assert diff_sum == pytest.approx(float(np.abs(live_alone - shadow_alone).sum()))
    assert sample(MODEL, role="shadow", version="s1") == 1


def test_shadow_is_compared_at_the_threshold_it_would_alert_with_if_promoted(root: Path) -> None:
    # The same model with a looser card threshold: it alerts on rows the live card does not.
    save_artifact(root, "loose", LIVE, alert=0.1)
    rows = np.array([row(**{LIVE: 1.0})] * 3 + [row()] * 2)
    assert list(artifact.load("v1", root).score(rows) >= 0.1) == [True] * 3 + [False] * 2  # premise

    by_cards = ModelSlot(root, shadow="loose", watch_s=0)
    before = sample(DISAGREED, which="shadow_only"), sample(DISAGREED, which="live_only")
    by_cards.score(rows)
    assert sample(DISAGREED, which="shadow_only") - before[0] == 3
    assert sample(DISAGREED, which="live_only") - before[1] == 0

    # A configured threshold applies to whichever model is live, so the shadow is judged by it too:
    # the same model then never disagrees with itself.
    overridden = ModelSlot(root, shadow="loose", watch_s=0, threshold=0.6)
    before = sample(DISAGREED, which="shadow_only"), sample(DISAGREED, which="live_only")
    overridden.score(rows)
    assert sample(DISAGREED, which="shadow_only") - before[0] == 0
    assert sample(DISAGREED, which="live_only") - before[1] == 0


def test_without_a_shadow_nothing_is_compared(root: Path) -> None:
    before = sample(COMPARED)
    ModelSlot(root, watch_s=0).score(np.array([row(**{LIVE: 4})]))
    assert sample(COMPARED) == before


def test_promotion_swaps_the_live_model_between_batches(root: Path) -> None:
    rows = np.array([row(**{LIVE: 4}), row(**{SHADOW: 4}), row()])
    slot = ModelSlot(root, watch_s=0)  # following ACTIVE
    np.testing.assert_array_equal(slot.score(rows), artifact.load("v1", root).score(rows))
    promoted, refused = swaps()

    save_artifact(root, "v2", SHADOW)
    artifact.promote("v2", root)
    slot.maybe_swap()

    assert slot.live.version == "v2"
    v2 = artifact.load("v2", root).score(rows)
    assert not np.array_equal(v2, artifact.load("v1", root).score(rows))  # premise: they differ
    np.testing.assert_array_equal(slot.score(rows), v2)
    assert swaps() == (promoted + 1, refused)
    assert sample(MODEL, role="live", version="v1") == 0
    assert sample(MODEL, role="live", version="v2") == 1

    slot.maybe_swap()  # the pointer unchanged: no second promotion
    assert swaps() == (promoted + 1, refused)


def test_the_pointer_is_read_at_most_every_watch_seconds(root: Path) -> None:
    slot = ModelSlot(root, watch_s=3600)
    save_artifact(root, "v2", SHADOW)
    artifact.promote("v2", root)
    slot.maybe_swap()
    assert slot.live.version == "v1"
    slot._checked -= 3600  # an hour later
    slot.maybe_swap()
    assert slot.live.version == "v2"


def _truncated_model(root: Path) -> str:
    save_artifact(root, "bad", SHADOW)
    path = root / "bad" / artifact.MODEL_FILE
    path.write_bytes(path.read_bytes()[:-10])
    return "bad"


def _missing_model_file(root: Path) -> str:
    save_artifact(root, "bad", SHADOW)
    (root / "bad" / artifact.MODEL_FILE).unlink()
    return "bad"


def _card_edit(root: Path, change: dict[str, object] | None, text: str | None = None) -> str:
    save_artifact(root, "bad", SHADOW)
    card_path = root / "bad" / artifact.CARD_FILE
    if text is None:
        card_path.write_text(json.dumps({**json.loads(card_path.read_text()), **(change or {})}))
    else:
        card_path.write_text(text)
    return "bad"


BREAKAGES = {
    "no such version": lambda root: "v9",
    "model file missing": _missing_model_file,
    "model file truncated": _truncated_model,
    "card for another feature set": lambda root: _card_edit(root, {"feature_set_hash": "0123456789abcdef"}),
    "card not JSON": lambda root: _card_edit(root, None, "{half a card"),
    "card not a JSON object": lambda root: _card_edit(root, None, "[]"),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_a_bad_artifact_named_by_active_is_refused_and_the_current_model_keeps_scoring(
    root: Path, breakage
) -> None:
    rows = np.array([row(**{LIVE: 4}), row()])
    slot = ModelSlot(root, watch_s=0)
    v1 = slot.score(rows)
    bad = breakage(root)
    with pytest.raises(artifact.ArtifactError):
        artifact.promote(bad, root)  # promotion checks first ...
    assert artifact.active_version(root) == "v1"
    (root / artifact.ACTIVE).write_text(bad + "\n")  # ... a pointer edited by hand does not
    promoted, refused = swaps()

    slot.maybe_swap()  # no exception: the stage keeps consuming

    assert slot.live.version == "v1"
    np.testing.assert_array_equal(slot.score(rows), v1)
    assert swaps() == (promoted, refused + 1)
    assert sample(MODEL, role="live", version="v1") == 1

    save_artifact(root, "v3", SHADOW)  # once a good version is promoted, it is taken
    artifact.promote("v3", root)
    slot.maybe_swap()
    assert slot.live.version == "v3"


@pytest.mark.parametrize("pointer", ["", None], ids=["empty", "deleted"])
def test_a_broken_pointer_is_refused(root: Path, pointer: str | None) -> None:
    slot = ModelSlot(root, watch_s=0)
    if pointer is None:
        (root / artifact.ACTIVE).unlink()
    else:
        (root / artifact.ACTIVE).write_text(pointer)
    promoted, refused = swaps()
    slot.maybe_swap()
    assert slot.live.version == "v1"
    assert swaps() == (promoted, refused + 1)


def test_a_pinned_version_never_swaps(root: Path) -> None:
    slot = ModelSlot(root, version="v1", watch_s=0)
    save_artifact(root, "v2", SHADOW)
    artifact.promote("v2", root)
    promoted, refused = swaps()
    slot.maybe_swap()
    (root / artifact.ACTIVE).write_text("v9\n")  # not even a broken pointer is looked at
    slot.maybe_swap()
    assert slot.live.version == "v1"
    assert swaps() == (promoted, refused)


def test_a_bad_artifact_at_start_up_stops_the_start(root: Path) -> None:
    with pytest.raises(artifact.ArtifactError, match="no directory"):
        ModelSlot(root, shadow="v9")
    with pytest.raises(artifact.ArtifactError, match="no directory"):
        ModelSlot(root, version="v9")
    (root / artifact.ACTIVE).unlink()
    with pytest.raises(artifact.ArtifactError, match="no active model"):
        ModelSlot(root)


def _agreement() -> tuple[float, ...]:
    """The shadow agreement metrics: compared, live-only and shadow-only alerts, score differences."""
    return (
        sample(COMPARED),
        sample(DISAGREED, which="live_only"),
        sample(DISAGREED, which="shadow_only"),
        sample(f"{DIFF}_count"),
        sample(f"{DIFF}_sum"),
    )
