"""What the scorer's alerts say about the world's ground truth, over the measured days only.

An alert counts once whatever its revisions (same `alert_id`). It detects a scam episode if one of its
revisions, made between the episode's first event and an hour after its last payment, names one of the
episode's events or the victim. It is false if it is about no scam: no scam event among its triggers or
payments, not about a scam's collection account, and not about a person scammed in the measured days.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from models.foreign.world import DAY, HOUR, Episode, World
from models.training.report import interval, rate_interval
from streams.schemas.alerts import Alert

_NUMBER = re.compile(r"\d[\d,.]*")
SLACK = HOUR  # an alert this long after the last payment still counts for the episode


@dataclass
class Seen:
    """One alert, its revisions merged."""

    first_at: float
    times: list[float] = field(default_factory=list)
    refs: set[str] = field(default_factory=set)
    phone: str | None = None
    account: str | None = None
    reasons: list[str] = field(default_factory=list)
    typology: str = ""
    scam_typology: str | None = None


def merge(alerts: list[tuple[float, Alert]]) -> dict[str, Seen]:
    out: dict[str, Seen] = {}
    for at, a in alerts:
        s = out.setdefault(
            str(a.alert_id),
            Seen(at, reasons=list(a.reasons), typology=a.typology, scam_typology=a.scam_typology),
        )
        s.first_at = min(s.first_at, at)
        s.times.append(at)
        s.refs.update(a.triggering_event_ids)
        s.refs.update(p.event_ref for p in a.payments)
        s.phone = s.phone or a.subject.phone
        if a.subject.account and a.subject.institution:
            s.account = s.account or f"{a.subject.institution}/{a.subject.account}"
    return out


def share(k: int, n: int) -> dict[str, Any]:
    """k of n, with its exact 95 % interval."""
    out: dict[str, Any] = {"n": k, "of": n, "share": round(k / n, 3) if n else None}
    if n:
        out["ci95"] = [round(x, 3) for x in interval(k, n)]
    return out


def rate(k: int, exposure: float) -> dict[str, Any]:
    """k events over `exposure` units (thousands of person-days), per unit, with its exact 95 % interval."""
    low, high = rate_interval(k)
    return {
        "n": k,
        "per_1000_people_day": round(k / exposure, 3),
        "ci95": [round(low / exposure, 3), round(high / exposure, 3)],
    }


def _about(s: Seen, ep: Episode) -> bool:
    # Not an alert on one of its collection accounts: the world's rings reuse them across victims, and the
    # simulator's reports count an episode caught only by an alert naming it.
    return bool(s.refs & ep.refs) or s.phone == ep.victim


def report(world: World, alerts: list[tuple[float, Alert]], measure_days: int) -> dict[str, Any]:
    start = world.t0 + (world.days - measure_days) * DAY
    seen = merge(alerts)
    episodes = [e for e in world.episodes if e.first_payment_at >= start]
    by_type: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    rows = []
    for ep in episodes:
        hit_at = [
            t for s in seen.values() if _about(s, ep) for t in s.times if ep.start <= t <= ep.end + SLACK
        ]
        alerted = bool(hit_at)
        early = alerted and min(hit_at) < ep.money_left_at
        by_type[ep.typology].append((ep.visible, alerted, early))
        rows.append((ep.visible, alerted, early))

    def summary(rs: list[tuple[bool, bool, bool]]) -> dict[str, Any]:
        vis = [r for r in rs if r[0]]
        return {
            "alerted": share(sum(r[1] for r in vis), len(vis)),
            "early": share(sum(r[2] for r in vis), len(vis)),
            "alerted_incl_unreported": share(sum(r[1] for r in rs), len(rs)),
        }

    # False alerts: first made in the measured days, about no scam.
    scam_refs = set().union(*(e.refs for e in world.episodes)) if world.episodes else set()
    collectors = set().union(*(e.collectors for e in world.episodes)) if world.episodes else set()
    victims = {e.victim for e in world.episodes if e.end + SLACK >= start}
    false = [
        s
        for s in seen.values()
        if s.first_at >= start
        and not (s.refs & scam_refs)
        and s.account not in collectors
        and s.phone not in victims
    ]
    exposure = len(world.people) * measure_days / 1000
    # A reason's figures differ alert by alert: counted by its wording, figures masked.
    reasons = Counter(r for s in false for r in dict.fromkeys(_NUMBER.sub("#", x) for x in s.reasons))

    negs: dict[str, list[bool]] = defaultdict(list)
    on_negative: set[int] = set()  # false alerts that are about a hard negative
    blamed: dict[int, str] = {}  # the (first) hard negative kind each such alert is about
    for n in world.negatives:
        if n.end + 2 * HOUR < start:
            continue
        hits = [
            s
            for s in seen.values()
            if (s.refs & n.refs or (n.account and s.account == n.account) or s.phone == n.person)
            and any(n.start <= t <= n.end + 2 * HOUR for t in s.times)
        ]
        on_negative.update(id(s) for s in hits)
        for s in hits:
            blamed.setdefault(id(s), n.kind)
        if n.at >= start:
            negs[n.kind].append(bool(hits))
    routine = [s for s in false if id(s) not in on_negative]
    return {
        "people": len(world.people),
        "days": world.days,
        "measure_days": measure_days,
        "silent_institutions": sorted(world.params.silent),
        "alerts_unique_measured": sum(1 for s in seen.values() if s.first_at >= start),
        "alert_messages_total": len(alerts),
        "episodes": summary(rows),
        "episodes_by_typology": {t: summary(r) for t, r in sorted(by_type.items())},
        "false_alerts": rate(len(false), exposure),
        "false_alerts_not_on_hard_negatives": rate(len(routine), exposure),
        "false_alerts_by_hard_negative_kind": dict(Counter(blamed.get(id(s), "none") for s in false)),
        "false_alert_typologies": dict(Counter(s.typology for s in false)),
        "false_alert_scam_typologies": dict(Counter(str(s.scam_typology) for s in false)),
        "hard_negatives": {k: share(sum(v), len(v)) for k, v in sorted(negs.items())},
        "top_false_alert_reasons": reasons.most_common(10),
    }
