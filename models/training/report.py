"""The evaluation report of `make train`: Markdown with every figure against its target, the
generalisation tests, and PR and calibration curves as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from scipy.stats import beta, chi2

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

TARGETS = {"recall": 0.90, "early": 0.80, "false": 1.0, "hard": 0.05}


def plots(label: np.ndarray, score: np.ndarray, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    precision, recall, _ = precision_recall_curve(label, score)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.set_xlabel("recall (scam payments)")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall, evaluation traffic")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(where / "pr_curve.png", dpi=90)
    plt.close(fig)
    observed, predicted = calibration_curve(label, score, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(predicted, observed, marker="o")
    ax.set_xscale("symlog", linthresh=0.001)
    ax.set_yscale("symlog", linthresh=0.001)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed share of scams")
    ax.set_title("Calibration, evaluation traffic")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(where / "calibration.png", dpi=90)
    plt.close(fig)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _of(c: int, n: int) -> str:
    return f"{c}/{n} ({_pct(c / n) if n else 'n/a'})"


def interval(c: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95% interval of a share c/n: a few dozen episodes leave a wide one."""
    low = float(beta.ppf(0.025, c, n - c + 1)) if c > 0 else 0.0
    high = float(beta.ppf(0.975, c + 1, n - c)) if c < n else 1.0
    return low, high


def _of_ci(c: int, n: int) -> str:
    if not n:
        return _of(c, n)
    low, high = interval(c, n)
    return f"{c}/{n} ({_pct(c / n)}; 95% interval {_pct(low)}-{_pct(high)})"


def rate_interval(events: int) -> tuple[float, float]:
    """The exact 95% interval of a Poisson count."""
    low = float(chi2.ppf(0.025, 2 * events)) / 2 if events > 0 else 0.0
    return low, float(chi2.ppf(0.975, 2 * events + 2)) / 2


def _ok(good: bool) -> str:
    return "met" if good else "**missed**"


def false_rate_interval(a: dict[str, Any]) -> tuple[float, float]:
    """The exact 95% interval of the false alerts per 1,000 people a day of alert-level figures `a`."""
    thousand_person_days = a["people"] / 1000 * a["days"]
    low, high = rate_interval(a["false_alerts"])
    return low / thousand_person_days, high / thousand_person_days


def intervals(a: dict[str, Any]) -> dict[str, Any]:
    """The exact 95% intervals of the figures against the targets (alert level, `Quality.as_dict`)."""
    return {
        "recall": interval(a["caught"], a["episodes"]) if a["episodes"] else None,
        "early_share_of_episodes": interval(a["caught_early"], a["episodes"]) if a["episodes"] else None,
        "false_per_1000_people_day": false_rate_interval(a),
        "hard_negatives": {
            k: interval(v["alerted"], v["episodes"]) if v["episodes"] else None
            for k, v in a["hard_negatives"].items()
        },
    }


def targets_table(a: dict[str, Any]) -> list[str]:
    """The alert-level figures against the targets, with their intervals; then what the alerts were."""
    hard = a["hard_negatives"]
    worst_hard = max((v["share"] or 0.0 for v in hard.values()), default=0.0)
    rate = "-".join(f"{x:.2f}" for x in false_rate_interval(a))
    return [
        "| measure | value | target | |",
        "| --- | --- | --- | --- |",
        f"| scam episodes alerted | {_of_ci(a['caught'], a['episodes'])} | ≥ 90% | "
        f"{_ok(a['recall'] >= TARGETS['recall'])} |",
        "| alerted before the money left the first payee account | "
        f"{_of_ci(a['caught_early'], a['episodes'])} | ≥ 80% "
        f"| {_ok(a['early_share_of_episodes'] >= TARGETS['early'])} |",
        f"| false alerts per 1,000 people a day | {a['false_per_1000_people_day']:.2f} "
        f"({a['false_alerts']} in {a['days']:.1f} days; 95% interval {rate}) | ≤ 1 | "
        f"{_ok(a['false_per_1000_people_day'] <= TARGETS['false'])} |",
        f"| worst hard-negative kind alerted | {_pct(worst_hard)} | ≤ 5% each | "
        f"{_ok(worst_hard <= TARGETS['hard'])} |",
        "",
        "The intervals are the exact 95% ones of the counts: with a few dozen episodes of a kind, a share "
        "a few points from its target says little either way. The last column reads the share itself.",
        "",
        f"Alerts: {a['alerts']} (one per episode and subject; {a['revisions']} further revisions grew them, "
        f"{a['alerts_per_caught_episode']:.2f} alerts per caught episode); false ones by kind: "
        + (", ".join(f"{k} {n}" for k, n in a["false_by_alert_typology"].items()) or "none")
        + f". Not counted in recall: {a['unobservable_episodes']} episodes whose victims' payments "
        "Stopline never "
        "receives (their bank or payment provider reports nothing): no one could alert on them; "
        f"{a.get('paid_after_the_window', 0)} episodes that started in the measured days but whose first "
        "payment came after them. An episode is measured in the days its first payment reaches Stopline.",
    ]


def hard_negative_table(hard: dict[str, Any]) -> list[str]:
    lines = [
        "### Hard negatives (share of episodes alerted)",
        "",
        "| kind | alerted | target |",
        "| --- | --- | --- |",
    ]
    for k, v in hard.items():
        lines.append(
            f"| {k} | {_of_ci(v['alerted'], v['episodes'])} | ≤ 5% "
            f"{_ok((v['share'] or 0) <= TARGETS['hard'])} |"
        )
    return lines


def markdown(card: dict[str, Any], r: dict[str, Any]) -> str:
    a = r["alert_level"]
    tr, ev = card["data"]["training"], card["data"]["evaluation"]
    th = card["thresholds"]
    lines = [
        f"# Model {card['version']}: evaluation report",
        "",
        "**All figures are on simulated traffic.** The model was trained on one simulated world and is "
        "measured on another: other people, another seed of every parameter of ordinary life (pace, "
        "amounts, strangers' calls, new payees), other institutions reporting nothing. Every choice "
        "(settings, calibration, the alert threshold) was made on a later slice of the training traffic; "
        "in this run the evaluation traffic decided nothing. Across runs, features and constraints were "
        "compared on the same evaluation world (the development world: its seed follows the training seed; "
        "docs/model.md), so its figures carry that selection; a release's sealed figures "
        "(`sealed-<seed>.md` beside this report) do not. They are not a measurement on real traffic.",
        "",
        "## Against the targets (evaluation traffic, the scorer's own code)",
        "",
        "The evaluation traffic ran through the live scorer's code offline "
        "(`models.training.scorer_replay`): "
        f"both stages, the hard rules, the warm-up gate, one alert per episode. {ev['population']:,} people "
        f"at {ev['world']['events_per_person_day']:.1f} events a person-day, {ev['warm_days']:g} days of "
        f"warm-up, then {a['days']:.1f} days measured.",
        "",
        *targets_table(a),
        "",
        "### Per typology",
        "",
        "Alert level: the episodes whose first payment reached Stopline in the measured days (an "
        "investment scam's later payments may fall after them). Row level: every episode with a "
        "payment scored in the measured days, at the "
        "model's threshold; and the same for a model trained and thresholded without any of the typology's "
        "payments (leave one typology out): what is caught of a scam the model never saw.",
        "",
        "| typology | alerted (alert level) | caught (row level) | caught, left out of training |",
        "| --- | --- | --- | --- |",
    ]
    loto = r["leave_one_typology_out"]
    rows = r["row_level"]["per_typology"]
    for t, v in a["per_typology"].items():
        lo = loto.get(t, {})
        lo_text = _of(lo["caught"], lo["episodes"]) if lo.get("episodes") else "n/a"
        row = rows.get(t)
        row_text = _of(row[0], row[1]) if row else "n/a"
        lines.append(f"| {t} | {_of(v['caught'], v['episodes'])} | {row_text} | {lo_text} |")
    lines += ["", *hard_negative_table(a["hard_negatives"])]
    rl = r["row_level"]
    lines += [
        "",
        "## The model beside baselines and ablations (row level, same split)",
        "",
        "Each variant is trained on the same rows, its threshold set on the validation slice for the same "
        f"false-alert target ({th['target_false_per_1000_people_day']} per 1,000 people a day there), and "
        "measured "
        "on the evaluation traffic's scored payments: alerts counted per person and episode as the scorer "
        "raises them, without the hard rules and the mule rule.",
        "",
        "| variant | PR-AUC | ROC-AUC | episodes caught | false alerts /1,000 people/day | worst hard "
        "negative |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in [rl, *r["baselines"], *r["ablations"]]:
        worst = max((c / n for c, n in v["hard_negatives"].values() if n), default=0.0)
        lines.append(
            f"| {v['name']} | {v['pr_auc']:.3f} | {v['roc_auc']:.3f} | {_pct(v['recall'])} | "
            f"{v['false_per_1000_people_day']:.2f} | {_pct(worst)} |"
        )
    ranges = r["held_out_ranges"]
    lines += [
        "",
        "## Held-out parameter ranges",
        "",
        "Trained without the scam episodes whose amount or call length lies outside the middle half (log "
        f"scale) of its range ({ranges['dropped_scam_rows']} scam payments left out), tested on episodes "
        "inside and outside that middle:",
        "",
        f"- inside: {_of(ranges['inside']['caught'], ranges['inside']['episodes'])}; outside (amounts and "
        "call "
        "lengths never seen in training): "
        f"{_of(ranges['outside']['caught'], ranges['outside']['episodes'])}; "
        f"{ranges['false_per_1000_people_day']:.2f} false alerts per 1,000 people a day",
        "",
        "## Partial coverage",
        "",
        "Episodes by whether the payee's institution reports its outflows (without it the payee-side "
        "features "
        "are missing), at the model's threshold, row level:",
        "",
    ]
    for where_, kinds in r["coverage"].items():
        lines.append(
            f"- {where_}: "
            + "; ".join(
                f"{k.replace('_', ' ')} {_of(v['alerted'], v['episodes'])} alerted" for k, v in kinds.items()
            )
        )
    lines += [
        f"- silent institutions: training world {', '.join(tr['world']['silent_institutions']) or 'none'}; "
        f"evaluation world {', '.join(ev['world']['silent_institutions']) or 'none'}",
        "",
        "## Reasons and typology",
        "",
        "Reasons are the feature groups that raised the score most (a path attribution over the trees whose "
        "contributions add up exactly to the score's departure from the model's expected score); the check: "
        "on alerted scam payments where the typology's own signal is there (a payment made during a call is "
        "scored first before the call is reported), how often it is among the three strongest.",
        "",
        "| typology | expected signal | in the top 3 (where present) | predicted typology right |",
        "| --- | --- | --- | --- |",
    ]
    for t, v in r["reasons"].items():
        ty = r["typology"].get(t, {"right": 0, "alerted_rows": 0})
        lines.append(
            f"| {t} | {', '.join(v['expected'])} | {_of(v['in_top3'], v['alerted_rows'])} | "
            f"{_of(ty['right'], ty['alerted_rows'])} |"
        )
    lines += [
        "",
        "![PR curve](pr_curve.png) ![Calibration](calibration.png)",
        "",
        "## Leakage checks",
        "",
        f"- trees trained on shuffled labels reach PR-AUC {r['shuffled_label_pr_auc']:.4f} on the test "
        "rows (the "
        f"base rate is {r['base_rate']:.4f})",
        "- the strongest single features (ROC-AUC alone, either direction): "
        + ", ".join(f"`{n}` {v:.3f}" for n, v in r["single_feature_auc"]),
        "",
        "## How it was made",
        "",
        f"- training traffic: {tr['population']:,} people, {tr['days']:g} days from {tr['start'][:10]}, "
        f"{tr['scam_episodes']} scam episodes, {tr['hard_negative_episodes']} hard-negative episodes; world "
        f"{_world(tr['world'])}",
        f"- evaluation traffic: {ev['population']:,} people, {ev['days']:g} days from {ev['start'][:10]}, "
        f"{ev['scam_episodes']} scam episodes, {ev['hard_negative_episodes']} hard-negative episodes; world "
        f"{_world(ev['world'])}",
        f"- fitted on {card['data']['fit_rows']:,} rows (every scam payment, at most "
        f"{card['data']['fit_negatives_kept']:,} others; "
        f"{_pct(card['data'].get('silent_payee_share', 0.0))} of them drawn at random with the payee's "
        "outflow features blanked, as a silent institution leaves them), selected and calibrated on the last "
        f"{_pct(card['data']['validation_share'])} of the training traffic "
        f"({card['data']['validation_rows']:,} rows, as they are)",
        "- settings compared on the validation slice (PR-AUC): "
        + "; ".join(
            f"{s['config']['max_iter']} trees, learning rate {s['config']['learning_rate']}, "
            f"{s['config']['max_leaf_nodes']} leaves: {s['validation_pr_auc']:.4f}"
            for s in card["model"]["selection"]
        ),
        f"- alert threshold {th['alert']:.4f}: on the validation slice "
        f"{th['validation']['false_per_1000_people_day']:.2f} false alerts per 1,000 people a day, "
        f"recall {_pct(th['validation']['recall'])}",
        "- monotonic constraints: "
        + ", ".join(f"`{k}` {'+' if v > 0 else '−'}" for k, v in card["model"]["monotonic"].items()),
        f"- time taken: {sum(card.get('seconds', {}).values()) / 60:.0f} min in all ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in card.get("seconds", {}).items())
        + ")",
        "",
        f"Model: {card['model']['kind']}; features: {len(card['feature_names'])} (set "
        f"{card['feature_set_hash']}); "
        f"trained {card['trained_at']}.",
        "",
    ]
    return "\n".join(lines)


def _world(w: dict[str, Any]) -> str:
    return (
        f"{w['events_per_person_day']:.1f} events a person-day, median transfer {w['amount_median']:.0f} "
        "CNY, "
        f"{_pct(w['stranger_call_share'])} of calls from strangers, {_pct(w['new_payee_share'])} of "
        "transfers "
        f"to new payees, silent: {', '.join(w['silent_institutions']) or 'none'}"
    )


def card_markdown(card: dict[str, Any]) -> str:
    a = card["metrics"]["alert_level"]
    return "\n".join(
        [
            f"# Model card: {card['version']}",
            "",
            f"- **What**: {card['model']['kind']}; scores a money-out (transfer or wallet payment) as the "
            "probability that it is a victim's payment in a scam in progress, names the scam's typology, and "
            "attributes the score to its features (the alert's reasons).",
            f"- **Trained**: {card['trained_at']} on simulated traffic "
            f"({card['data']['training']['population']:,} people, {card['data']['training']['days']:g} "
            "days).",
            f"- **Features** ({len(card['feature_names'])}, set `{card['feature_set_hash']}`): "
            + ", ".join(card["feature_names"]),
            f"- **Evaluation** (another simulated world, the scorer's own code): {_pct(a['recall'])} of scam "
            f"episodes alerted, {_pct(a['early_share_of_episodes'])} before the money left the first payee "
            f"account, {a['false_per_1000_people_day']:.2f} false alerts per 1,000 people a day.",
            f"- **Threshold**: alert at {card['thresholds']['alert']:.4f} (set on the validation slice).",
            "- **Libraries**: " + ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
            f"- **Model file**: `{card['model_file']}`, SHA-256 `{card['model_sha256']}`.",
            "- **Limits**: trained only on simulated behaviour; real traffic differs. Retrain on labelled "
            "outcomes (`python -m models.training.feedback`) before relying on it.",
            "",
        ]
    )


def sealed_markdown(s: dict[str, Any]) -> str:
    """A release measured once more, on another world (`models.training.sealed`): its figures against the
    targets, beside its training report's."""
    a, t = s["alert_level"], s["traffic"]
    dev = s["development"]
    sealed = s["kind"] == "sealed"
    lines = [
        f"# Model {s['version']}: {s['kind']} evaluation, seed {s['seed']}",
        "",
        (
            f"**Measured once, on a sealed world.** Seed {s['seed']} is an evaluation world no training run, "
            "design or release was measured on before this report, and nothing is to be chosen on it "
            "(docs/model.md): its figures are the fairer reading of the release, where the training report's "
            f"(seed {dev['seed']}, the development world designs were compared on) carry that selection."
            if sealed
            else f"**The development world.** Seed {s['seed']} is the evaluation world of this model's own "
            "training report, the one designs were compared on: these figures are that report's, measured "
            "again, not a sealed measurement."
        )
        + " All on simulated traffic, not a measurement on real traffic.",
        "",
        f"The artifact as released (model SHA-256 `{s['model_sha256'][:16]}…`, alert threshold "
        f"{s['alert_threshold']:.4f}), loaded as the scorer loads it, on the training run's evaluation plan"
        + (" with another seed" if sealed else "")
        + ", through the live scorer's code offline (`models.training.scorer_replay`: both "
        "stages, the hard rules, the warm-up gate, one alert per episode) and measured as the training "
        f"report measures (`models.training.alert_quality`). {t['population']:,} people, "
        f"{s['plan']['warm_days']:g} days of warm-up, then {a['days']:.1f} days measured; "
        f"{t['events']:,} events.",
        "",
        "## Against the targets",
        "",
        *targets_table(a),
        "",
        "### Per typology (alert level)",
        "",
        "| typology | alerted |",
        "| --- | --- |",
        *(f"| {k} | {_of_ci(v['caught'], v['episodes'])} |" for k, v in a["per_typology"].items()),
        "",
        *hard_negative_table(a["hard_negatives"]),
    ]
    d = dev["alert_level"]
    if sealed and d:
        lines += [
            "",
            f"## Beside the training report (development world, seed {dev['seed']})",
            "",
            f"| measure | development world, seed {dev['seed']} | sealed world, seed {s['seed']} |",
            "| --- | --- | --- |",
            f"| scam episodes alerted | {_of_ci(d['caught'], d['episodes'])} | "
            f"{_of_ci(a['caught'], a['episodes'])} |",
            f"| alerted early | {_of_ci(d['caught_early'], d['episodes'])} | "
            f"{_of_ci(a['caught_early'], a['episodes'])} |",
            f"| false alerts per 1,000 people a day | {_rate_ci(d)} | {_rate_ci(a)} |",
        ]
        for k in sorted(set(d["hard_negatives"]) | set(a["hard_negatives"])):
            was, now = d["hard_negatives"].get(k), a["hard_negatives"].get(k)
            lines.append(
                f"| {k.replace('_', ' ')} alerted | "
                + " | ".join(_of_ci(v["alerted"], v["episodes"]) if v else "n/a" for v in (was, now))
                + " |"
            )
        lines += [
            "",
            "The development figures are the training report's, made by the code of its day.",
        ]
    lines += [
        "",
        "## How it was made",
        "",
        f"- world: seed {s['seed']}, {t['days']:g} days from {t['start'][:10]} ({t['scams_per_day']:g} scam "
        f"episodes a day: {t['scam_episodes']} scam and {t['hard_negative_episodes']} hard-negative "
        f"episodes); {_world(t['world'])}",
        "- plan: "
        + "; ".join(
            f"{k.replace('_', ' ')} {'drawn' if v is None else v} ({s['plan_from'][k]})"
            for k, v in s["plan"].items()
        ),
        f"- code (the simulator, features, scorer and measure) digest `{s['code_digest']}`; "
        f"{s['seconds'] / 60:.0f} min",
        "",
    ]
    return "\n".join(lines)


def _rate_ci(a: dict[str, Any]) -> str:
    low, high = false_rate_interval(a)
    return f"{a['false_per_1000_people_day']:.2f} ({a['false_alerts']}; 95% interval {low:.2f}-{high:.2f})"
