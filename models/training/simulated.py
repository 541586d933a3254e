"""`make train`: the model of the scorer, from simulated traffic, with the tests that say whether it holds
outside the traffic it learnt from.

1. Training traffic (one simulated world: its own pace, amounts, habits and silent institutions) is
   replayed through the feature code; its last `validation_share` of time is the validation slice.
2. Candidate settings are fitted on the earlier part and chosen by PR-AUC on the validation slice; the
   chosen trees are calibrated there, and the alert threshold is the lowest that keeps the false alerts
   per 1,000 people a day at `target_false` on that slice. The test days play no part in any choice.
3. Evaluation traffic is another world (another seed: other parameters, other people, other silent
   institutions) at a realistic pace, later in time. It is replayed through the live scorer's own code
   (`scorer_replay`) for the alert-level figures (one alert per episode, rules, warm-up), and through the
   feature code for the row-level figures every variant shares (`generalisation`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from models import artifact
from models.features.account import PAYEE_FEATURES, AccountState
from models.features.person import SINCE_CAP_H
from models.features.vector import FEATURE_NAMES
from models.training import cached, generalisation, parallel, publish, report
from models.training.alert_quality import Quality, measure
from models.training.constraints import MONOTONIC, monotonic_constraints
from models.training.dataset import Dataset, Observation, build_dataset, dataset_of
from models.training.evaluate import ranking, row_alerts, single_feature_auc, threshold_for_false_alerts
from models.training.fit import FitConfig, calibrate, trees, typology_classifier
from models.training.scorer_replay import OfflineScorer, Replayed
from services.scorer.explain import GROUPS, group_contributions
from services.scorer.settings import ScorerSettings
from services.simulator.offline import OfflineConfig, Truth, generate
from services.simulator.typologies import RANGES
from streams.schemas.alerts import Alert

log = logging.getLogger(__name__)
DATA = Path(".local/models")
EVALUATION = "evaluation traffic through the scorer"
# A training run's evaluation world is its seed's +1000: the development world that designs are compared
# on (docs/model.md). A release is judged once more on a sealed seed (`models.training.sealed`).
DEVELOPMENT_SEED_OFFSET = 1000

CONFIGS = (
    FitConfig(max_iter=200, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=40, l2_regularization=1.0),
    FitConfig(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=63, min_samples_leaf=80, l2_regularization=1.0
    ),
    FitConfig(max_iter=150, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=0.5),
)
# What each typology's reasons should name (the groups of services.scorer.explain), for the report's check.
EXPECTED_SIGNAL = {
    "impersonation_police": ("call",),
    "impersonation_service": ("call",),
    "account_takeover": ("takeover",),
    "sim_swap": ("sim", "takeover"),
    "wallet_scam": ("wallet", "call"),
    "job_scam": ("refund", "fan_in", "rests"),
    "mule_network": ("fan_in", "rests"),
    "loan": ("call", "fan_in", "rests"),
    "investment": ("fan_in", "rests", "payee"),
}
GROUP_NAMES = (
    "call",
    "takeover",
    "sim",
    "wallet",
    "payee",
    "amount",
    "fan_in",
    "rests",
    "refund",
    "velocity",
    "contacts",
    "history",
)
assert len(GROUP_NAMES) == len(GROUPS)


@dataclass(frozen=True)
class Plan:
    train: OfflineConfig
    evaluation: OfflineConfig
    eval_warm_days: float = 2.0
    validation_share: float = 0.25
    late_share: float = 0.3
    fit_negatives: int = 250_000
    target_false: float = 1.0  # per 1,000 people a day, on the validation slice (the target is at most 1)
    configs: tuple[FitConfig, ...] = CONFIGS
    seed: int = 0
    workers: int = 2  # processes fitting the report's variants side by side
    silent_payee_share: float = 0.0  # fitting rows whose payee's outflows are blanked (`silence_payees`)


@dataclass
class Timer:
    began: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round(now - self.began - sum(self.steps.values()), 1)
        log.info("%s: %.0f s", name, self.steps[name])


def run(
    plan: Plan,
    *,
    version: str,
    artifacts: Path,
    reports: Path,
    promote: bool,
    libraries: dict[str, str],
    cache: Path = DATA,
) -> dict[str, Any]:
    clock = Timer()
    start = plan.train.start.timestamp()
    observe = Observation(start, plan.train.days * 86_400, late_share=plan.late_share, seed=plan.train.seed)
    data, train_truth = cached.kept(
        cache, "training", lambda: _training(plan.train, observe), plan.train, observe
    )
    clock.step("training traffic")
    cut = float(np.quantile(data.table.scored_at, 1 - plan.validation_share))
    validation = data.subset(data.table.scored_at >= cut)
    fit = silence_payees(
        _subsample(data.subset(data.table.scored_at < cut), plan.fit_negatives, plan.seed),
        plan.silent_payee_share,
        plan.seed,
    )
    val_days = (float(data.table.scored_at.max()) - cut) / 86_400
    log.info(
        "fit on %d rows (%d scams), validate on %d",
        len(fit.table),
        fit.table.label.sum(),
        len(validation.table),
    )

    # Model selection on the validation slice only (the candidates fitted side by side).
    fitted = parallel.run(
        {
            str(i): partial(trees, fit.table.X, fit.table.label, config, monotonic_constraints())
            for i, config in enumerate(plan.configs)
        },
        workers=plan.workers,
    )
    candidates = []
    for i, config in enumerate(plan.configs):
        model = fitted[str(i)]
        pr_auc = ranking(validation.table.label, model.predict_proba(validation.table.X)[:, 1]).pr_auc
        candidates.append((pr_auc, config, model))
        log.info("candidate %s: validation PR-AUC %.4f", config, pr_auc)
    _, config, chosen = max(candidates, key=lambda c: c[0])
    scams = fit.table.label == 1
    kinds = typology_classifier(fit.table.X[scams], fit.table.typology[scams], config)
    model = calibrate(chosen, validation.table.X, validation.table.label, kinds)
    val_scores = model.predict_proba(validation.table.X)[:, 1]
    people = plan.train.population
    threshold = threshold_for_false_alerts(
        validation.table, validation.person, val_scores, plan.target_false, people=people, days=val_days
    )
    val_alerts = row_alerts(
        validation.table, validation.person, val_scores, threshold, people=people, days=val_days
    )
    clock.step("model selection, calibration, threshold")

    card: dict[str, Any] = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "kind": "HistGradientBoostingClassifier (monotonic constraints) + logistic calibration; "
            "typology: "
            "HistGradientBoostingClassifier on the scam rows",
            **asdict(config),
            "monotonic": MONOTONIC,
            "selection": [{"config": asdict(c), "validation_pr_auc": round(p, 4)} for p, c, _ in candidates],
        },
        "data": {
            "source": "simulated (services.simulator.offline)",
            "training": traffic(plan.train, train_truth),
            "validation_share": plan.validation_share,
            "late_share": plan.late_share,
            "fit_rows": len(fit.table),
            "fit_negatives_kept": plan.fit_negatives,
            "silent_payee_share": plan.silent_payee_share,
            "validation_rows": len(validation.table),
        },
        "thresholds": {
            "alert": threshold,
            "target_false_per_1000_people_day": plan.target_false,
            "validation": {
                "false_per_1000_people_day": round(val_alerts.false_per_1000_people_day, 3),
                "recall": round(val_alerts.recall, 4),
            },
        },
        "libraries": libraries,
    }
    where = publish.save(model, card, artifacts, version)
    clock.step("artifact")

    # The evaluation traffic through the scorer's own code (its alerts, and the rows it scored), while
    # the report's model variants are fitted beside it: each is a job of its own, on `workers` cores.
    typologies = sorted({str(t) for t in fit.table.typology[fit.table.label == 1]})
    train_params = {e["scenario_id"]: e.get("params", {}) for e in train_truth.episodes}
    eval_start = plan.evaluation.start.timestamp() + plan.eval_warm_days * 86_400
    jobs: dict[str, Callable[[], Any]] = {
        EVALUATION: partial(_evaluation, plan, artifacts, version, eval_start),
        **generalisation.fits(fit, config, typologies, train_params, RANGES),
    }
    done = parallel.run(jobs, workers=plan.workers)
    clock.step(f"evaluation traffic through the scorer, and the model variants fitted ({plan.workers} cores)")
    test, alerts, eval_truth = done.pop(EVALUATION)
    quality = evaluation_quality(plan.evaluation, plan.eval_warm_days, alerts, eval_truth)
    split = generalisation.Split(
        fit,
        validation,
        test,
        people,
        val_days,
        plan.evaluation.population,
        quality.days,
        plan.target_false,
    )
    test_scores = model.predict_proba(test.table.X)[:, 1]
    main_rows = generalisation.measured("the model", lambda X: model.predict_proba(X)[:, 1], split)
    params = {**train_params, **{e["scenario_id"]: e.get("params", {}) for e in eval_truth.episodes}}
    results: dict[str, Any] = {
        "alert_level": quality.as_dict(),
        "row_level": main_rows.as_dict(),
        "baselines": [generalisation.measured(n, done[n], split).as_dict() for n in generalisation.BASELINES],
        "ablations": [generalisation.measured(n, done[n], split).as_dict() for n in generalisation.ABLATIONS],
        "leave_one_typology_out": {
            t: generalisation.left_out(split, t, done[generalisation.without(t)]) for t in typologies
        },
        "held_out_ranges": generalisation.held_out_ranges(
            split, done[generalisation.HELD_OUT], params, RANGES
        ),
        "shuffled_label_pr_auc": generalisation.shuffled_labels(split, done[generalisation.SHUFFLED]),
    }
    clock.step("model variants measured")
    results["coverage"] = generalisation.coverage(split, test_scores, threshold)
    results["base_rate"] = float(test.table.label.mean())
    results["single_feature_auc"] = single_feature_auc(test.table)[:8]
    results["reasons"] = _reason_check(model, test, test_scores, threshold)
    results["typology"] = _typology_check(model, test, test_scores, threshold)
    clock.step("coverage, reasons, typology")

    card["data"]["evaluation"] = {**traffic(plan.evaluation, eval_truth), "warm_days": plan.eval_warm_days}
    card["metrics"] = {"alert_level": results["alert_level"], "row_level": results["row_level"]}
    card["seconds"] = clock.steps
    where = publish.save(model, card, artifacts, version)  # the card with the evaluation
    card = artifact.read_card(where)
    (where / "card.md").write_text(report.card_markdown(card))
    out = reports / version
    report.plots(test.table.label, test_scores, out)
    (out / "report.md").write_text(report.markdown(card, results))
    (out / "results.json").write_text(_json(results))
    if promote:
        artifact.promote(version, artifacts)
    clock.step("report")
    return {
        "version": version,
        "artifact": str(where),
        "report": str(out / "report.md"),
        "promoted": promote,
        "seconds": clock.steps,
        "alert_level": {
            k: results["alert_level"][k]
            for k in (
                "recall",
                "early_share_of_episodes",
                "false_per_1000_people_day",
                "hard_negatives",
                "per_typology",
            )
        },
    }


def _evaluation(
    plan: Plan, artifacts: Path, version: str, measured_from: float
) -> tuple[Dataset, list[tuple[float, Alert]], Truth]:
    """The rows the scorer scored in the measured days (from `measured_from`), its alerts, the truth."""
    scored, truth = replay_evaluation(plan.evaluation, artifacts, version)
    return dataset_of(scored, truth, burn_in_until=measured_from), scored.alerts, truth


def evaluation_world(
    seed: int, *, population: int, days: float, warm_days: float, scams_per_day: float, start: datetime
) -> OfflineConfig:
    """The evaluation traffic of world `seed`: `warm_days` that warm the scorer up, then `days` measured.
    Its event ids are tagged, and some of its random streams seeded, by the training seed the world is the
    development world of (`eval7` for 1007), so a seed is the same traffic whichever command makes it."""
    return OfflineConfig(
        population=population,
        days=warm_days + days,
        scams_per_day=scams_per_day,
        seed=seed,
        start=start,
        run_tag=f"eval{seed - DEVELOPMENT_SEED_OFFSET}",
    )


def replay_evaluation(world: OfflineConfig, artifacts: Path, version: str) -> tuple[Replayed, Truth]:
    """The evaluation traffic through the scorer's own code (`scorer_replay`), with the artifact's own
    threshold: every row it scored and alert it made (with when), and the truth."""
    truth = Truth()
    scorer = OfflineScorer(artifacts, version, ScorerSettings(model_alert_threshold=0))
    return scorer.run(generate(world, truth)), truth


def evaluation_quality(
    world: OfflineConfig, warm_days: float, alerts: list[tuple[float, Alert]], truth: Truth
) -> Quality:
    """The alert-level figures against the targets, on the days after the warm-up."""
    start = world.start.timestamp()
    return measure(
        alerts,
        truth.episodes,
        truth.benign,
        people=world.population,
        start=start + warm_days * 86_400,
        end=start + world.days * 86_400,
    )


def _training(config: OfflineConfig, observe: Observation) -> tuple[Dataset, Truth]:
    truth = Truth()
    data = build_dataset(generate(config, truth), truth, burn_in_until=observe.start, observe=observe)
    return data, truth


# What a payee's own institution reports (its outflows, from what it paid out to whether it is seen
# reporting): missing where that institution is silent.
PAYEE_OUTFLOW_FEATURES = PAYEE_FEATURES[
    PAYEE_FEATURES.index("payee_paid_out_24h_log10") : PAYEE_FEATURES.index("payee_outflows_seen") + 1
]


def silence_payees(data: Dataset, share: float, seed: int) -> Dataset:
    """`share` of the rows (drawn at random, whatever their label) as they would be if the payee's
    institution reported nothing: its outflow features take the values of an account never seen paying out,
    from the feature code itself. The training world has few silent institutions; a deployment has many,
    and the model must not lean on the payee's side where it is missing."""
    if share <= 0:
        return data
    silent = AccountState().payee_features(0.0, "", False)
    columns = np.array([FEATURE_NAMES.index(f) for f in PAYEE_OUTFLOW_FEATURES])
    values = np.array([silent[PAYEE_FEATURES.index(f)] for f in PAYEE_OUTFLOW_FEATURES])
    rows = np.random.default_rng(seed).random(len(data.table)) < share
    X = data.table.X.copy()
    X[np.ix_(rows, columns)] = values
    return Dataset(replace(data.table, X=X), data.person, data.payee)


def _subsample(data: Dataset, negatives: int, seed: int) -> Dataset:
    """Every scam row and at most `negatives` others (the trees learn the boundary as well, faster; the
    calibration on the full validation slice puts the probabilities back where they belong)."""
    neg = np.flatnonzero(data.table.label == 0)
    if len(neg) <= negatives:
        return data
    keep = np.zeros(len(data.table), dtype=bool)
    keep[data.table.label == 1] = True
    keep[np.random.default_rng(seed).choice(neg, negatives, replace=False)] = True
    return data.subset(keep)


def traffic(config: OfflineConfig, truth: Truth) -> dict[str, Any]:
    world = truth.world
    return {
        "population": config.population,
        "days": config.days,
        "start": config.start.isoformat(),
        "seed": config.seed,
        "scams_per_day": config.scams_per_day,
        "scam_episodes": len(truth.episodes),
        "hard_negative_episodes": len(truth.benign),
        "world": world.describe() if world else {},
    }


def present(group: str, f: dict[str, float]) -> bool:
    """Whether the fact a reason group tells is there at all in a row (a payment made during a call is
    scored before the call is reported: its call cannot be a reason yet)."""
    facts = {
        "call": f["call_present"] == 1,
        "takeover": f["hours_since_new_device"] < SINCE_CAP_H,
        "sim": f["hours_since_sim_change"] < SINCE_CAP_H,
        "wallet": f["seq_topup_new_payee"] == 1,
        "refund": f["payee_paid_payer_24h"] == 1,
        "fan_in": f["payee_payers_24h"] >= 2,
        "rests": f["payee_outflows_seen"] == 1 and f["payee_minutes_money_rests"] < 1440,
    }
    return facts.get(group, True)


def _reason_check(model: Any, test: Dataset, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """For each typology, on its alerted scam payments where the signal it is known by (EXPECTED_SIGNAL)
    is there, the share whose three strongest reasons include that signal."""
    table = test.table
    rows = np.flatnonzero((table.label == 1) & (scores >= threshold))
    if len(rows) == 0:
        return {}
    groups = group_contributions(model.contributions(table.X[rows]))
    out: dict[str, list[int]] = {}
    for r, by_group in zip(rows, groups, strict=True):
        typology = str(table.typology[r])
        f = dict(zip(FEATURE_NAMES, table.X[r].tolist(), strict=True))
        expected = [g for g in EXPECTED_SIGNAL.get(typology, ()) if present(g, f)]
        if not expected:
            continue
        top = [GROUP_NAMES[k] for k in np.argsort(-by_group)[:3] if by_group[k] > 0]
        book = out.setdefault(typology, [0, 0])
        book[0] += any(g in top for g in expected)
        book[1] += 1
    return {
        k: {"expected": list(EXPECTED_SIGNAL.get(k, ())), "in_top3": a, "alerted_rows": n}
        for k, (a, n) in sorted(out.items())
    }


def _typology_check(model: Any, test: Dataset, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """How often the predicted scam typology is the true one, on the alerted scam payments."""
    table = test.table
    rows = np.flatnonzero((table.label == 1) & (scores >= threshold))
    predicted = [t for t, _ in model.typology(table.X[rows])]
    out: dict[str, list[int]] = {}
    for r, guess in zip(rows, predicted, strict=True):
        book = out.setdefault(str(table.typology[r]), [0, 0])
        book[0] += guess == table.typology[r]
        book[1] += 1
    return {k: {"right": a, "alerted_rows": n} for k, (a, n) in sorted(out.items())}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str) + "\n"


def default_plan(args: Any) -> Plan:
    train = OfflineConfig(
        population=args.population, days=args.days, scams_per_day=args.scams_per_day, seed=args.seed
    )
    evaluation = evaluation_world(
        args.seed + DEVELOPMENT_SEED_OFFSET,
        population=args.eval_population,
        days=args.eval_days,
        warm_days=args.eval_warm_days,
        scams_per_day=args.eval_scams_per_day,
        start=train.start + timedelta(days=args.days),
    )
    return Plan(
        train,
        evaluation,
        eval_warm_days=args.eval_warm_days,
        target_false=args.target_false,
        workers=args.workers,
        silent_payee_share=args.silent_payee_share,
    )
