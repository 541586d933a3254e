"""Case outcomes and triage become training labels: the label rules, and `models.training.feedback export` on
the real database from alerts stored by the coordination service and cases closed through its API. The
export's event and episode ids are keyed pseudonyms: no case number or transaction id leaves."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from models.training import feedback
from models.training.table import load
from services.coordination.alerts import service
from services.coordination.cases.repository import AlertWithCases, LinkedCase
from services.kit import logging as kit_logging
from services.kit.db import unit_of_work
from services.kit.logging import pseudonym
from streams.schemas.alerts import Alert, Subject
from tests import factories as f
from tests.coordination.conftest import case_body

# The alerts of this test are made in a window of their own, so alerts of other tests in the session's
# database are not counted.
WINDOW = datetime(2025, 3, 1, tzinfo=UTC)
KEY = "feedback-test-pseudonym-key"


def _alert(
    n: int, *, typology: str = "call_then_transfer", features: bool = True, feature_set: str = ""
) -> Alert:
    created = WINDOW + timedelta(minutes=n)
    return f.alert(
        typology=typology,
        reasons=["a long call from a number that had never called before"],
        subject=Subject(
            phone=f.phone(), account=f.account(), institution="bank-a", payee_account=f.account()
        ),
        triggering_event_ids=[f"telecom-a:call-{n}", f"bank-a:tr-{n}"],
        amount_at_risk="5000.00",
        event_time=created - timedelta(seconds=30),
        created_at=created,
        scorer_version="test",
        features=[n + i / 100 for i in range(len(FEATURE_NAMES))] if features else None,
        feature_set=(feature_set or FEATURE_SET_HASH) if features else None,
    )


@pytest.mark.integration
async def test_export_labels_alerts_by_case_outcome_and_triage(
    coord, sessions, infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The key the command line reads from STOPLINE_PSEUDONYM_KEY (below); in this process, as the
    # services' start-up (configure_logging) would set it.
    monkeypatch.setattr(kit_logging, "_pseudonym_key", KEY.encode())
    c, op = coord.client, f.officer()
    confirmed, false_alarm, dismissed, undetermined = _alert(1), _alert(2), _alert(3), _alert(4)
    stale, rule, pending, untouched = (
        _alert(5, feature_set="0" * 16),
        _alert(6, typology="mule_fan_in", features=False),
        _alert(7),
        _alert(8),
    )
    dismissed_but_confirmed = _alert(9, typology="suspicious_payment")
    dismissed_undetermined = _alert(11)
    outside = _alert(-10)  # before the window
    alerts = [confirmed, false_alarm, dismissed, undetermined, stale, rule, pending, untouched]
    alerts += [dismissed_but_confirmed, dismissed_undetermined, outside]
    async with unit_of_work(sessions) as s:
        assert (await service.store(s, alerts=alerts)).new == len(alerts)

    case_numbers: list[str] = []

    async def case(*linked: Alert, outcome: str | None) -> str:
        body = case_body(source="alert", alert_ids=[str(a.alert_id) for a in linked])
        case_numbers.append(str(body["case_number"]))
        opened = await c.post("/v1/cases", json=body, headers=op)
        assert opened.status_code == 201, opened.text
        if outcome is not None:
            closed = await c.patch(
                f"/v1/cases/{opened.json()['id']}", json={"status": "closed", "outcome": outcome}, headers=op
            )
            assert closed.status_code == 200, closed.text
        return str(body["case_number"])

    for a in (dismissed, dismissed_but_confirmed, dismissed_undetermined):
        for status in ("triaged", "dismissed"):
            moved = await c.post(f"/v1/alerts/{a.alert_id}/status", json={"status": status}, headers=op)
            assert moved.status_code == 200, moved.text
    fraud_case = await case(confirmed, stale, dismissed_but_confirmed, outcome="confirmed_fraud")
    await case(false_alarm, outcome="false_alarm")
    # One undetermined case: it labels neither alert; the one dismissed in triage stays a false alarm.
    await case(undetermined, dismissed_undetermined, outcome="undetermined")
    await case(pending, outcome=None)

    out = tmp_path / "feedback.csv"
    async with sessions() as s:
        summary = await feedback.export(s, out=out, since=WINDOW, until=WINDOW + timedelta(hours=1))
    assert summary == {
        "out": str(out),
        "rows": 5,
        "by_label": {"1": 2, "0": 3},
        "labelled_by": {"confirmed_fraud": 2, "dismissed": 2, "false_alarm": 1},
        "left_out": {
            "case_open": 1,
            "no_decision": 1,
            "no_features": 1,
            "other_feature_set": 1,
            "undetermined": 1,
        },
        "feature_set": FEATURE_SET_HASH,
    }

    table = load(out)
    assert table.features == FEATURE_NAMES
    rows = {str(ref): i for i, ref in enumerate(table.event_ref)}
    episode = pseudonym(fraud_case)
    expected = {
        pseudonym("bank-a:tr-1"): (1, episode, ""),  # no officer confirmed a typology
        pseudonym("bank-a:tr-2"): (0, "", ""),
        pseudonym("bank-a:tr-3"): (0, "", ""),
        pseudonym("bank-a:tr-9"): (1, episode, ""),
        pseudonym("bank-a:tr-11"): (0, "", ""),
    }
    assert {
        ref: (int(table.label[i]), str(table.episode_id[i]), str(table.typology[i]))
        for ref, i in rows.items()
    } == expected
    # The two alerts of the confirmed case share its episode, so training can still group by it.
    assert (
        table.episode_id[rows[pseudonym("bank-a:tr-1")]] == table.episode_id[rows[pseudonym("bank-a:tr-9")]]
    )
    first = rows[pseudonym("bank-a:tr-1")]
    assert table.X[first].tolist() == pytest.approx(confirmed.features)
    assert table.scored_at[first] == pytest.approx(confirmed.created_at.timestamp())
    assert table.occurred_at[first] == pytest.approx(confirmed.event_time.timestamp())
    text = out.read_text()
    for a in alerts:
        assert a.subject.phone and a.subject.phone not in text
        assert a.subject.account and a.subject.account not in text
    assert "+86" not in text
    _assert_no_identifiers(text, alerts, case_numbers)

    # The command line gives the same, from DATABASE_URL.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "models.training.feedback",
        "export",
        "--out",
        str(tmp_path / "feedback.npz"),
        "--since",
        WINDOW.isoformat(),
        "--until",
        (WINDOW + timedelta(hours=1)).isoformat(),
        env={**os.environ, "DATABASE_URL": infra.database_url, "STOPLINE_PSEUDONYM_KEY": KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    printed = json.loads(stdout)
    assert printed == {**summary, "out": str(tmp_path / "feedback.npz")}
    again = load(tmp_path / "feedback.npz")
    assert sorted(again.event_ref.tolist()) == sorted(rows)
    assert sorted(again.episode_id.tolist()) == sorted(table.episode_id.tolist())
    with np.load(tmp_path / "feedback.npz", allow_pickle=False) as data:
        stored = " ".join(str(v) for name in data.files for v in data[name].ravel().tolist())
    _assert_no_identifiers(stored, alerts, case_numbers)


def _assert_no_identifiers(text: str, alerts: list[Alert], case_numbers: list[str]) -> None:
    """Neither a police case number nor an event id (the bank's transaction, the telecom's call) is in it."""
    assert len(case_numbers) == 4
    for number in case_numbers:
        assert number not in text
    for a in alerts:
        for event_id in a.triggering_event_ids:
            assert event_id not in text
    assert "CJ-" not in text and "bank-a:" not in text and "telecom-a:" not in text


@pytest.mark.integration
async def test_an_empty_window_writes_an_empty_table(sessions, tmp_path: Path):
    out = tmp_path / "none.csv.gz"
    async with sessions() as s:
        summary = await feedback.export(
            s, out=out, since=WINDOW - timedelta(days=2), until=WINDOW - timedelta(days=1)
        )
    assert summary["rows"] == 0 and summary["left_out"] == {}
    table = load(out)
    assert len(table) == 0 and table.features == FEATURE_NAMES


def _linked(status: str = "new", *cases: tuple[str, str | None]) -> AlertWithCases:
    return AlertWithCases(
        id=uuid.uuid4(),
        typology="call_then_transfer",
        status=status,
        features=[0.0] * len(FEATURE_NAMES),
        feature_set=FEATURE_SET_HASH,
        triggering_event_ids=["bank-a:tr"],
        event_time=WINDOW,
        created_at=WINDOW,
        cases=[LinkedCase(f"CJ-{i}", case_status, outcome) for i, (case_status, outcome) in enumerate(cases)],
    )


@pytest.mark.parametrize(
    ("alert", "label", "reason"),
    [
        # A confirmed case outweighs another case's false alarm and one still open,
        (
            _linked("new", ("closed", "false_alarm"), ("closed", "confirmed_fraud"), ("open", None)),
            1,
            "confirmed_fraud",
        ),
        # and a triage dismissal: money was lost.
        (_linked("dismissed", ("closed", "confirmed_fraud")), 1, "confirmed_fraud"),
        # A case still open may yet confirm it: no label now, even if triage dismissed the alert.
        (_linked("dismissed", ("open", None)), None, "case_open"),
        (_linked("new", ("closed", "false_alarm"), ("open", None)), None, "case_open"),
        (_linked("new", ("closed", "undetermined"), ("closed", "false_alarm")), 0, "false_alarm"),
        (_linked("dismissed"), 0, "dismissed"),
        # An undetermined case says nothing either way: a dismissal stands, and without one no label.
        (_linked("dismissed", ("closed", "undetermined")), 0, "dismissed"),
        (_linked("escalated", ("closed", "undetermined")), None, "undetermined"),
        (_linked("triaged"), None, "no_decision"),
    ],
)
def test_label_rules(alert: AlertWithCases, label: int | None, reason: str) -> None:
    decision = feedback.decide(alert)
    assert (decision.label, decision.reason) == (label, reason)
    confirmed = [c.case_number for c in alert.cases if c.outcome == "confirmed_fraud"]
    assert decision.episode_id == (confirmed[0] if label == 1 else "")


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--out", "rows.parquet"],
        ["export", "--out", "rows.csv", "--since", "2026-11-01T00:00:00"],  # no time zone
        ["export"],
    ],
)
def test_command_line_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        feedback.main(argv)
    assert exit_.value.code == 2
