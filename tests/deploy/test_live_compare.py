"""Alert-level quality against ground truth, as the report and the live check measure it: an alert and its
revisions are one; an episode counts when observable; hard negatives by kind; the live and offline
figures compared."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from deploy.live_check.__main__ import batches, compare, one_sided
from models.training.alert_quality import measure
from streams.schemas.alerts import Alert
from tests import factories as f

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _alert(*refs: str, alert_id: uuid.UUID | None = None, revision: int = 1) -> Alert:
    return f.alert(
        alert_id=alert_id or uuid.uuid4(), revision=revision, triggering_event_ids=list(refs), event_time=T0
    )


EPISODES = [
    {
        "scenario_id": "s1",
        "typology": "loan",
        "started_at": T0.isoformat(),
        "event_ids": ["b:1", "b:2"],
        "observable": True,
        "first_payout_at": (T0 + timedelta(minutes=30)).isoformat(),
    },
    {
        "scenario_id": "s2",
        "typology": "loan",
        "started_at": T0.isoformat(),
        "event_ids": ["b:3"],
        "observable": True,
        "first_payout_at": (T0 + timedelta(minutes=5)).isoformat(),
    },
    {
        "scenario_id": "s3",
        "typology": "sim_swap",
        "started_at": T0.isoformat(),
        "event_ids": ["b:9"],
        "observable": False,
    },
]
BENIGN = [
    {"scenario_id": "h1", "kind": "payroll", "started_at": T0.isoformat(), "event_ids": ["b:20"]},
    {"scenario_id": "h2", "kind": "payroll", "started_at": T0.isoformat(), "event_ids": ["b:21"]},
]


def test_alerts_episodes_and_hard_negatives_are_counted_once_each() -> None:
    one = uuid.uuid4()
    t = T0.timestamp()
    alerts = [
        (t + 60, _alert("b:2", alert_id=one)),
        (t + 120, _alert("b:2", "b:7", alert_id=one, revision=2)),  # its revision: the same alert
        (t + 600, _alert("b:3")),  # s2 alerted after its money left (5 min)
        (t + 60, _alert("b:20")),  # a false alert on a hard negative
        (t + 60, _alert("x:1")),  # a false alert on ordinary traffic
    ]
    q = measure(alerts, EPISODES, BENIGN, people=2000, start=t, end=t + 86_400).as_dict()
    assert (q["alerts"], q["revisions"], q["false_alerts"]) == (4, 1, 2)
    assert q["false_per_1000_people_day"] == 1.0
    assert (q["episodes"], q["caught"], q["caught_early"], q["unobservable_episodes"]) == (2, 2, 1, 1)
    assert q["per_typology"] == {"loan": {"caught": 2, "episodes": 2}}
    assert q["hard_negatives"]["payroll"] == {"alerted": 1, "episodes": 2, "share": 0.5}


def test_the_live_and_offline_figures_are_set_side_by_side() -> None:
    t = T0.timestamp()
    offline = measure([(t, _alert("b:2"))], EPISODES, BENIGN, people=2000, start=t, end=t + 86_400).as_dict()
    live = measure([], EPISODES, BENIGN, people=2000, start=t, end=t + 86_400).as_dict()
    diff = compare(live, offline)
    assert diff["caught"] == {"live": 0, "offline": 1} and not diff["agree"]
    assert diff["per_typology"]["loan"] == {"live": 0, "offline": 1, "episodes": 2}
    assert compare(offline, offline)["agree"]


def test_an_episode_is_measured_in_the_days_its_first_payment_arrives_in() -> None:
    """An investment scam that starts with messages on the last evening and takes its first deposit the
    next day belongs to the next day's figures; one started before and first paid today, to today's."""
    t = T0.timestamp()
    day = 86_400
    episodes = [
        {**EPISODES[0], "scenario_id": "late", "event_ids": ["b:30"], "first_money_at": t + day + 600},
        {
            **EPISODES[0],
            "scenario_id": "early",
            "event_ids": ["b:31"],
            "started_at": (T0 - timedelta(hours=5)).isoformat(),
            "first_money_at": t + 600,
        },
    ]
    q = measure([(t + 700, _alert("b:31"))], episodes, [], people=1000, start=t, end=t + day).as_dict()
    assert (q["episodes"], q["caught"], q["paid_after_the_window"]) == (1, 1, 1)


def test_posts_follow_report_time_whatever_an_institutions_volume() -> None:
    """A small bank's transfers are posted within a minute of report time of everyone else's events, not
    once a thousand of them have gathered (hours of traffic later)."""
    events = sorted(
        [(float(t), SimpleNamespace(institution="telecom-a", t=float(t))) for t in range(0, 3600, 2)]
        + [(t + 0.5, SimpleNamespace(institution="bank-g", t=t + 0.5)) for t in range(0, 3600, 300)],
        key=lambda e: e[0],
    )
    posted = [(institution, [e.t for e in batch]) for institution, batch in batches(events, flush_s=60)]
    assert sorted(t for _, ts in posted for t in ts) == [t for t, _ in events]  # every event, once
    newest = 0.0
    for _, ts in posted:
        assert newest - min(ts) <= 60 + 2  # nothing posted after events a minute younger than it
        newest = max(newest, *ts)
    assert max(len(ts) for _, ts in posted) <= 31


def test_the_alerts_only_one_side_raised_are_named_by_their_latest_revision_in_the_window() -> None:
    both, live_only, offline_only, outside = (uuid.uuid4() for _ in range(4))
    early = f.alert(alert_id=outside, triggering_event_ids=["b:0"], event_time=T0 - timedelta(days=1))
    live = [
        _alert("b:1", alert_id=both),
        _alert("b:1", "b:2", alert_id=both, revision=2),
        _alert("b:5", alert_id=live_only),
        _alert("b:6", alert_id=live_only, revision=2),
        early,
    ]
    offline = [_alert("b:1", alert_id=both), _alert("b:8", alert_id=offline_only)]
    t = T0.timestamp()
    found = one_sided(live, offline, (t, t + 86_400))
    assert [(a["alert_id"], a["revision"]) for a in found["only_live"]] == [(str(live_only), 2)]
    assert [a["alert_id"] for a in found["only_offline"]] == [str(offline_only)]
