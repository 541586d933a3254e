"""The evaluation report of a trained model: Markdown with the figures, and PR and calibration PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from models.training.evaluate import Evaluation, EventScores  # noqa: E402


def plots(ev: EventScores, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    precision, recall, _ = precision_recall_curve(ev.label, ev.score)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.set_xlabel("recall (scam payments)")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall, held-out simulated data")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(where / "pr_curve.png", dpi=90)
    plt.close(fig)
    observed, predicted = calibration_curve(ev.label, ev.score, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(predicted, observed, marker="o")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed share of scams")
    ax.set_title("Calibration, held-out simulated data")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(where / "calibration.png", dpi=90)
    plt.close(fig)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(
    card: dict[str, Any], e: Evaluation, leakage: list[tuple[str, float]], shuffled_pr_auc: float
) -> str:
    lines = [
        f"# Model {card['version']}: evaluation report",
        "",
        "**All figures are on simulated data** (the Stopline traffic simulator), held out by time: the model",
        "never saw the test period. They show the model learns the simulated behaviours; they are not a",
        "measurement on real traffic.",
        "",
        "## Data",
        "",
        f"- {card['data']['population']} simulated people, {card['data']['days']} days, "
        f"{card['data']['episodes']} scam episodes over {len(card['data']['typologies'])} typologies",
        f"- training: {card['data']['train_rows']} scored money-outs{_training_only(card)}; test (last "
        f"{card['data']['test_days']} days): {e.events} money-out events, {e.positives} scam payments",
        "- labels: a money-out is positive when it is a victim's payment within a scam episode; transfers "
        "between mule accounts are left out of the table (neither a victim's loss nor ordinary life)",
        "",
        "## Quality (held-out)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| PR-AUC (events) | {e.pr_auc:.3f} |",
        f"| ROC-AUC (events) | {e.roc_auc:.3f} |",
        f"| threshold at 1% FPR | {e.threshold_1pct:.4f} (measured FPR {_pct(e.fpr_1pct)}) |",
        f"| recall of scam payments at 1% FPR | {_pct(e.event_recall_1pct)} |",
        f"| **recall of scam episodes at 1% FPR** | **{_pct(e.episode_recall_1pct)}** of {e.episodes} |",
        f"| caught before money left the first payee account (1% FPR) | {_pct(e.early_share_1pct)} "
        "of caught episodes whose money left |",
        f"| daily alert budget | {e.budget_per_day:.0f} alerts/day → threshold {e.threshold_budget:.4f}, "
        f"{e.alerts_per_day_budget:.1f} alerts/day |",
        f"| recall of scam episodes at the budget | {_pct(e.episode_recall_budget)} |",
        f"| caught early at the budget | {_pct(e.early_share_budget)} of caught episodes whose money left |",
        "",
        "## Recall per typology (episodes caught / episodes)",
        "",
        "| typology | at 1% FPR | at the alert budget |",
        "| --- | --- | --- |",
    ]
    for ty, (c, t) in e.per_typology_1pct.items():
        cb, tb = e.per_typology_budget.get(ty, (0, t))
        lines.append(
            f"| {ty} | {c}/{t} ({_pct(c / t if t else 0)}) | {cb}/{tb} ({_pct(cb / tb if tb else 0)}) |"
        )
    lines += [
        "",
        "![PR curve](pr_curve.png) ![Calibration](calibration.png)",
        "",
        "## Leakage checks",
        "",
        f"- the same model trained on shuffled labels reaches PR-AUC {shuffled_pr_auc:.3f} (the base rate is "
        f"{e.positives / max(e.events, 1):.4f}): the pipeline itself does not leak the label",
        "- no identifier is a feature (event ids, phone numbers, account numbers are drawn alike for scam "
        "and ordinary traffic); the strongest single features (ROC-AUC alone, either direction):",
        "",
        "| feature | ROC-AUC alone |",
        "| --- | --- |",
        *[f"| {name} | {auc:.3f} |" for name, auc in leakage[:8]],
        "",
        "## Typology parameter ranges",
        "",
    ]
    for ty, ranges in card["data"]["parameter_ranges"].items():
        lines.append(f"- **{ty}**: " + "; ".join(f"{k} {lo:g}–{hi:g}" for k, (lo, hi) in ranges.items()))
    lines += [
        "",
        f"Model: {card['model']['kind']}; features: {len(card['feature_names'])} "
        f"(set {card['feature_set_hash']}); trained {card['trained_at']}.",
        "",
    ]
    return "\n".join(lines)


def _training_only(card: dict[str, Any]) -> str:
    n = card["data"].get("training_only_rows", 0)
    return f" ({n} of them from further tables, trained on and never tested on)" if n else ""


def card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    return "\n".join(
        [
            f"# Model card: {card['version']}",
            "",
            f"- **What**: {card['model']['kind']}; scores a money-out (transfer or payment) as the "
            "probability that it is a victim's payment in a scam in progress.",
            f"- **Trained**: {card['trained_at']} on simulated data ({card['data']['days']} days, "
            f"{card['data']['population']} people, typologies: {', '.join(card['data']['typologies'])}).",
            f"- **Features** ({len(card['feature_names'])}, set `{card['feature_set_hash']}`): "
            + ", ".join(card["feature_names"]),
            f"- **Held-out quality** (simulated): PR-AUC {m['pr_auc']:.3f}; episode recall at 1% FPR "
            f"{_pct(m['episode_recall_1pct'])}; at {m['budget_per_day']:.0f} alerts/day "
            f"{_pct(m['episode_recall_budget'])}.",
            f"- **Thresholds**: alert {card['thresholds']['alert']:.4f} (the daily budget), 1% FPR "
            f"{card['thresholds']['fpr_1pct']:.4f}.",
            "- **Libraries**: " + ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
            f"- **Model file**: `{card['model_file']}`, SHA-256 `{card['model_sha256']}`.",
            "- **Limits**: trained only on simulated behaviour; real traffic differs. Retrain on labelled "
            "outcomes (`python -m models.training.feedback`) before relying on it.",
            "",
        ]
    )
