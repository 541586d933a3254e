"""The live model and its shadow: loaded from versioned artifacts at start-up (a bad artifact stops the
start with a clear error), swapped between batches when the `ACTIVE` pointer names another version."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from models.artifact import Artifact, ArtifactError, active_version, load
from services.kit.logging import log_fields
from services.scorer import metrics

log = logging.getLogger(__name__)


class ModelSlot:
    def __init__(
        self, root: Path, *, version: str = "", shadow: str = "", watch_s: float = 5.0, threshold: float = 0.0
    ) -> None:
        """`version` empty: follow the ACTIVE pointer under `root` (promotion swaps the model live)."""
        self.root = root
        self.pinned = version
        self.watch_s = watch_s
        self.threshold_override = threshold
        self.live: Artifact = load(version or active_version(root), root)
        self.shadow: Artifact | None = load(shadow, root) if shadow else None
        self._checked = time.monotonic()
        metrics.MODEL_INFO.labels("live", self.live.version).set(1)
        if self.shadow is not None:
            metrics.MODEL_INFO.labels("shadow", self.shadow.version).set(1)

    @property
    def threshold(self) -> float:
        return self.threshold_override or self.live.alert_threshold

    def maybe_swap(self) -> None:
        """Between batches: if the pointer names another version, load it and swap; a bad one is refused
        (logged, counted) and the current model keeps scoring."""
        if self.pinned or time.monotonic() - self._checked < self.watch_s:
            return
        self._checked = time.monotonic()
        try:
            wanted = active_version(self.root)
            if wanted == self.live.version:
                return
            new = load(wanted, self.root)
        except ArtifactError as exc:
            metrics.MODEL_SWAPS.labels("refused").inc()
            log.error("model not swapped", extra=log_fields(reason=str(exc)))
            return
        metrics.MODEL_INFO.labels("live", self.live.version).set(0)
        metrics.MODEL_INFO.labels("live", new.version).set(1)
        log.info("model promoted", extra=log_fields(old=self.live.version, new=new.version))
        self.live = new
        metrics.MODEL_SWAPS.labels("promoted").inc()

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Live scores of a micro-batch; the shadow scores the same rows and only its agreement is kept."""
        live = self.live.score(rows)
        if self.shadow is not None:
            shadow = self.shadow.score(rows)
            threshold = self.threshold
            shadow_threshold = self.threshold_override or self.shadow.alert_threshold
            agree = (live >= threshold) == (shadow >= shadow_threshold)
            metrics.SHADOW_COMPARED.inc(len(rows))
            metrics.SHADOW_DISAGREED.labels("live_only").inc(int(((live >= threshold) & ~agree).sum()))
            metrics.SHADOW_DISAGREED.labels("shadow_only").inc(
                int(((shadow >= shadow_threshold) & ~agree).sum())
            )
            for diff in np.abs(live - shadow):
                metrics.SHADOW_SCORE_DIFF.observe(float(diff))
        return live
