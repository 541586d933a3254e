"""Training on any labelled table (`python -m models.training --table rows.csv`): the table's own feature
columns, a split by its time column, gradient-boosted trees calibrated on the latest part of the training
period, and beside them the plain baselines trained on the same rows (logistic regression, a random
forest), so a reader sees at once whether the model earns its keep.

Only a table whose feature columns are exactly the scorer's (a simulated table, a feedback export) can
give a model the live scorer may load; any other is trained, reported and kept, never promoted, and its
card says why."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import numpy as np

from models import artifact
from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from models.training import publish
from models.training.constraints import monotonic_constraints
from models.training.evaluate import (
    TARGET_FPR,
    AtThreshold,
    Ranking,
    at_threshold,
    ranking,
    single_feature_auc,
    threshold_at_fpr,
)
from models.training.fit import (
    FitConfig,
    calibrate,
    logistic_regression,
    random_forest,
    trees,
    typology_classifier,
)
from models.training.table import Columns, FeatureTable, TableError, concat, load_each
from streams.schemas.alerts import ScamTypology

log = logging.getLogger(__name__)
SCAM_TYPOLOGIES = list(get_args(ScamTypology))  # the typologies an alert can name: all a classifier learns
VALIDATION_SHARE = 0.25  # the latest quarter of the first table's training period: calibration, thresholds


@dataclass(frozen=True)
class Split:
    fit: FeatureTable  # the trees and the baselines learn from these
    validation: FeatureTable  # calibration and every threshold
    test: FeatureTable  # held out: the figures
    training_only: int  # rows of the further tables (in `fit`)
    cut: float  # the test period starts here
    validation_cut: float


def split(tables: list[FeatureTable], *, test_days: float | None, test_share: float) -> Split:
    """The first table by time: its last `test_days` (or last `test_share` of rows) is the test set, the
    latest VALIDATION_SHARE of the rest the validation slice. Further tables only add fitting rows."""
    first, *further = tables
    if test_days is not None:
        cut = float(first.scored_at.max()) - test_days * 86_400
    else:
        cut = float(np.quantile(first.scored_at, 1.0 - test_share))
    older = first.subset(first.scored_at < cut)
    test = first.subset(first.scored_at >= cut)
    if len(older) == 0 or len(test) == 0:
        raise TableError(f"the split at {cut:.0f} leaves no rows to train on or none to test on")
    validation_cut = float(np.quantile(older.scored_at, 1.0 - VALIDATION_SHARE))
    fit_rows = concat([older.subset(older.scored_at < validation_cut), *further])
    return Split(
        fit_rows,
        older.subset(older.scored_at >= validation_cut),
        test,
        sum(len(t) for t in further),
        cut,
        validation_cut,
    )


@dataclass(frozen=True)
class Measured:
    """One model on the split: its threshold from the validation slice, its figures on the test rows."""

    name: str
    test: Ranking
    at_fpr: AtThreshold  # the threshold that gave TARGET_FPR on the validation slice
    episodes: tuple[int, int] | None  # (caught, all) at that threshold; None without episode ids
    per_typology: dict[str, tuple[int, int]] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pr_auc": self.test.pr_auc,
            "roc_auc": self.test.roc_auc,
            "threshold": self.at_fpr.threshold,
            "fpr_reached": self.at_fpr.fpr,
            "recall": self.at_fpr.recall,
            "episodes": self.episodes,
            "per_typology": self.per_typology,
        }


def measure(name: str, validation: np.ndarray, test: np.ndarray, s: Split) -> Measured:
    threshold = threshold_at_fpr(validation[s.validation.label == 0], TARGET_FPR)
    chosen = at_threshold(s.test.label, test, threshold)
    episodes, per = _episodes(s.test, test >= threshold)
    return Measured(name, ranking(s.test.label, test), chosen, episodes, per)


def _episodes(
    test: FeatureTable, alerted: np.ndarray
) -> tuple[tuple[int, int] | None, dict[str, tuple[int, int]] | None]:
    """Episodes caught (any positive row alerted) if the table has episode ids; per typology if it has
    those too."""
    if "episode_id" not in test.present:
        return None, None
    positive = (test.label == 1) & (test.episode_id != "")
    ids = np.unique(test.episode_id[positive])
    caught = set(np.unique(test.episode_id[positive & alerted]).tolist())
    if "typology" not in test.present:
        return (len(caught), len(ids)), None
    typology = {str(test.episode_id[i]): str(test.typology[i]) for i in np.flatnonzero(positive)}
    per: dict[str, tuple[int, int]] = {}
    for episode in ids.tolist():
        c, n = per.get(typology[episode], (0, 0))
        per[typology[episode]] = (c + (episode in caught), n + 1)
    return (len(caught), len(ids)), dict(sorted(per.items()))


@dataclass(frozen=True)
class MatchedThreshold:
    """The alert threshold of a model of the scorer's features trained on a table: it flags no more of the
    validation slice's ordinary rows than the active model does at its own threshold, which its training
    set on a whole simulated population for the false-alert target (per 1,000 people a day, which a
    table without people cannot measure). A retrained model keeps the live alert budget."""

    threshold: float
    active: str
    active_threshold: float
    false_rows: int  # the validation slice's ordinary rows the active model flags, and this one at most

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def matched_threshold(
    scores: np.ndarray, validation: FeatureTable, artifacts: Path
) -> tuple[MatchedThreshold | None, str | None]:
    """The threshold (see MatchedThreshold), or None and why the model cannot be promoted."""
    try:
        active = artifact.load(artifact.active_version(artifacts), artifacts)
    except artifact.ArtifactError as exc:
        return None, f"no active model of these features to take its alert budget from ({exc})"
    ordinary = validation.label == 0
    budget = int((active.score(validation.X[ordinary]) >= active.alert_threshold).sum())
    ranked = np.sort(scores[ordinary])[::-1]
    # The lowest threshold flagging at most `budget` of them: just above the next one's score.
    threshold = float(np.nextafter(ranked[budget], np.inf)) if budget < len(ranked) else 0.0
    return MatchedThreshold(threshold, active.version, active.alert_threshold, budget), None


def _on_test(model: Any, s: Split, threshold: float) -> dict[str, float]:
    on_test = at_threshold(s.test.label, model.predict_proba(s.test.X)[:, 1], threshold)
    return {"test_recall": on_test.recall, "test_fpr": on_test.fpr}


def feature_set_of(features: tuple[str, ...]) -> str:
    """The scorer's hash for its own features; for any other columns a hash of their names."""
    if features == FEATURE_NAMES:
        return FEATURE_SET_HASH
    return hashlib.sha256(f"table|{','.join(features)}".encode()).hexdigest()[:16]


def run(
    paths: list[Path],
    *,
    columns: Columns,
    test_days: float | None,
    test_share: float,
    version: str,
    artifacts: Path,
    reports: Path,
    promote: bool,
    libraries: dict[str, str],
) -> dict[str, Any]:
    tables = load_each(paths, columns)
    features = tables[0].features
    if not features:
        raise TableError(f"{paths[0]}: no feature columns (every column is a label, time, id or description)")
    if features != FEATURE_NAMES and set(features) == set(FEATURE_NAMES):
        tables = [replace(t, features=FEATURE_NAMES, X=t.columns(FEATURE_NAMES)) for t in tables]
        features = FEATURE_NAMES
    s = split(tables, test_days=test_days, test_share=test_share)
    config = FitConfig()
    scorer_features = features == FEATURE_NAMES
    # The scorer's features keep their known directions (docs/model.md), whatever the table's labels say:
    # feedback is a biased sample, and an innocuous fact must not raise a live score.
    model_trees = trees(s.fit.X, s.fit.label, config, monotonic_constraints() if scorer_features else None)
    scams = (s.fit.label == 1) & np.isin(s.fit.typology, SCAM_TYPOLOGIES)
    kinds = (
        typology_classifier(s.fit.X[scams], s.fit.typology[scams], config)
        if "typology" in s.fit.present
        else None
    )
    model = calibrate(model_trees, s.validation.X, s.validation.label, kinds)
    log.info("trained on %d rows, calibrated on %d", len(s.fit), len(s.validation))

    def both(m: Any) -> tuple[np.ndarray, np.ndarray]:
        return m.predict_proba(s.validation.X)[:, 1], m.predict_proba(s.test.X)[:, 1]

    measured = [
        measure("gradient-boosted trees, calibrated (the model)", *both(model), s),
        measure("the same trees, uncalibrated", *both(model_trees), s),
        measure("logistic regression (baseline)", *both(logistic_regression(s.fit.X, s.fit.label)), s),
        measure("random forest (baseline)", *both(random_forest(s.fit.X, s.fit.label, config.seed)), s),
    ]
    for m in measured:
        log.info(
            "%s: PR-AUC %.3f, recall %.3f at FPR %.4f", m.name, m.test.pr_auc, m.at_fpr.recall, m.at_fpr.fpr
        )
    shuffled = trees(s.fit.X, np.random.default_rng(0).permutation(s.fit.label), replace(config, max_iter=60))
    shuffled_pr_auc = ranking(s.test.label, shuffled.predict_proba(s.test.X)[:, 1]).pr_auc
    alert, why_not = (
        matched_threshold(model.predict_proba(s.validation.X)[:, 1], s.validation, artifacts)
        if scorer_features
        else (
            None,
            f"trained on the columns of {paths[0]}, not on the features the scorer computes "
            f"(set {FEATURE_SET_HASH}): the live scorer cannot feed it",
        )
    )
    card: dict[str, Any] = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "kind": "HistGradientBoostingClassifier + logistic calibration",
            **config.__dict__,
        },
        "data": {
            "source": "table",
            "files": [str(p) for p in paths],
            "columns": {"label": columns.label, "time": columns.time, "id": columns.id},
            "optional_columns_missing": sorted({"occurred_at", "episode_id", "typology"} - tables[0].present),
            "rows": sum(len(t) for t in tables),
            "positives": int(sum(int(t.label.sum()) for t in tables)),
            "fit_rows": len(s.fit),
            "training_only_rows": s.training_only,
            "validation_rows": len(s.validation),
            "test_rows": len(s.test),
            "test_positives": int(s.test.label.sum()),
            "test_from": s.cut,
            "validation_from": s.validation_cut,
        },
        "metrics": measured[0].as_dict(),
        "comparison": [m.as_dict() for m in measured],
        "leakage": {
            "shuffled_label_pr_auc": shuffled_pr_auc,
            "single_feature_auc": single_feature_auc(s.test)[:10],
        },
        "thresholds": {
            "alert": alert.threshold if alert else measured[0].at_fpr.threshold,
            "fpr_1pct": measured[0].at_fpr.threshold,
            **({"alert_matched": alert.as_dict() | _on_test(model, s, alert.threshold)} if alert else {}),
        },
        "libraries": libraries,
        "not_for_scorer": why_not,
    }
    where = publish.save(
        model, card, artifacts, version, features=features, feature_set_hash=feature_set_of(features)
    )
    card = artifact.read_card(where)
    (where / "card.md").write_text(card_markdown(card))
    out = reports / version
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(card))
    promoted = False
    if promote and why_not is None:
        artifact.promote(version, artifacts)
        promoted = True
    return {
        "version": version,
        "artifact": str(where),
        "report": str(out / "report.md"),
        "promoted": promoted,
        **({"not_promoted": why_not} if why_not and promote else {}),
        "pr_auc": round(measured[0].test.pr_auc, 4),
        "recall": round(measured[0].at_fpr.recall, 4),
        "fpr_reached": round(measured[0].at_fpr.fpr, 5),
        "baselines": {m.name: round(m.test.pr_auc, 4) for m in measured[2:]},
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def _rate(x: float | None) -> str:
    """A false-positive rate: small, so to two decimals (0.013% must not read 0.0%)."""
    return "n/a" if x is None or x != x else f"{100 * x:.2f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:.3f}"


def markdown(card: dict[str, Any]) -> str:
    d = card["data"]
    missing = d["optional_columns_missing"]
    lines = [
        f"# Model {card['version']}: evaluation report",
        "",
        f"Trained on the table{'s' if len(d['files']) > 1 else ''} {', '.join(f'`{f}`' for f in d['files'])} "
        "(not on Stopline's simulator): the figures say how this model does on the later part of that table.",
        "",
        "## Data",
        "",
        f"- {d['rows']} rows, {d['positives']} positive ({_pct(d['positives'] / max(d['rows'], 1))}); "
        f"columns: label `{d['columns']['label']}`, time `{d['columns']['time']}`, id `{d['columns']['id']}`",
        f"- {len(card['feature_names'])} feature columns (set `{card['feature_set_hash']}`): "
        + ", ".join(f"`{f}`" for f in card["feature_names"]),
        f"- split by time: {d['fit_rows']} rows to fit"
        + (
            f" ({d['training_only_rows']} of them from further tables, never tested on)"
            if d["training_only_rows"]
            else ""
        )
        + f", then {d['validation_rows']} to calibrate and choose thresholds on, then {d['test_rows']} "
        f"held out ({d['test_positives']} positive)",
    ]
    if missing:
        lines.append(
            f"- not in the table: {', '.join(f'`{m}`' for m in missing)} (what needs them reads n/a)"
        )
    lines += [
        "",
        "## Held-out quality, beside plain baselines on the same split",
        "",
        f"Each threshold is the one that gave a {100 * TARGET_FPR:.0f}% false-positive rate on the "
        "validation slice; the test rows show the rate it actually reaches there (a calibrated model's "
        "few distinct scores can land far from the rate asked).",
        "",
        "| model | PR-AUC | ROC-AUC | FPR reached | recall at it | episodes caught |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in card["comparison"]:
        episodes = m["episodes"]
        caught = f"{episodes[0]}/{episodes[1]}" if episodes else "n/a"
        lines.append(
            f"| {m['name']} | {_num(m['pr_auc'])} | {_num(m['roc_auc'])} | {_rate(m['fpr_reached'])} | "
            f"{_pct(m['recall'])} | {caught} |"
        )
    matched = card["thresholds"].get("alert_matched")
    if matched:
        lines += [
            "",
            f"The alert threshold, {matched['threshold']:.4f}, is not that one: it flags at most the "
            f"{matched['false_rows']} ordinary rows of the validation slice that the active model "
            f"{matched['active']} flags at its own ({matched['active_threshold']:.4f}, set for the "
            "false-alert target on a simulated population), so a retrained model keeps the live alert "
            "budget. On the "
            f"test rows it reaches recall {_pct(matched['test_recall'])} at a false-positive rate of "
            f"{_rate(matched['test_fpr'])}.",
        ]
    per = card["metrics"]["per_typology"]
    if per:
        lines += [
            "",
            "## Episodes caught per typology (the model)",
            "",
            "| typology | caught |",
            "| --- | --- |",
        ]
        lines += [f"| {k} | {c}/{n} ({_pct(c / n if n else None)}) |" for k, (c, n) in per.items()]
    leak = card["leakage"]
    lines += [
        "",
        "## Leakage checks",
        "",
        f"- the trees trained on shuffled labels reach PR-AUC {_num(leak['shuffled_label_pr_auc'])} on the "
        f"test rows (their base rate is {_pct(d['test_positives'] / max(d['test_rows'], 1))})",
        "- the strongest single columns (ROC-AUC alone, either direction): "
        + ", ".join(f"`{name}` {auc:.3f}" for name, auc in leak["single_feature_auc"][:5]),
        "",
    ]
    if card.get("not_for_scorer"):
        lines += ["## Not for the live scorer", "", card["not_for_scorer"] + ".", ""]
    return "\n".join(lines)


def card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    return "\n".join(
        [
            f"# Model card: {card['version']}",
            "",
            f"- **What**: {card['model']['kind']}, on the feature columns of "
            f"{', '.join(card['data']['files'])}.",
            f"- **Trained**: {card['trained_at']}; {card['data']['rows']} rows.",
            f"- **Features** ({len(card['feature_names'])}, set `{card['feature_set_hash']}`): "
            + ", ".join(card["feature_names"]),
            f"- **Held-out quality**: PR-AUC {_num(m['pr_auc'])}, ROC-AUC {_num(m['roc_auc'])}; recall "
            f"{_pct(m['recall'])} at a false-positive rate of {_rate(m['fpr_reached'])}.",
            "- **Live scorer**: "
            + (card["not_for_scorer"] or "may be promoted (the scorer's own features)."),
            "- **Libraries**: " + ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
            f"- **Model file**: `{card['model_file']}`, SHA-256 `{card['model_sha256']}`.",
            "",
        ]
    )
