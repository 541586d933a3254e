"""The story's steps against a stand-in for the coordination API: what it does when a simulated bank
leaves an instruction unanswered (2% of them, on purpose) or rejects it."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.story.__main__ import DONE, Story, parser
from deploy.story.api import StoryFailed


class Api:
    """Answers each instruction issued with the next status of `outcomes`; records every call."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, str, Any]] = []

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, path, kwargs.get("json")))
        return {"id": f"i-{len(self.calls)}"}

    def wait_for(self, iid: str, wanted: frozenset[str], **kwargs: Any) -> dict[str, Any]:
        status = self.outcomes.pop(0)
        if status == "acknowledged" and not kwargs.get("unanswered_ok"):
            raise StoryFailed("did not answer in time")
        return {"id": iid, "status": status, "institution_id": "bank-b", "outcome_reason": None}


def _story(api: Api) -> Story:
    story = Story(parser().parse_args(["--retries", "2"]))
    story.api = api  # type: ignore[assignment]
    return story


def test_an_instruction_left_unanswered_is_withdrawn_and_issued_again():
    api = Api(["acknowledged", "executed"])
    row = _story(api).issue("operator", {"id": "c-1"}, {"kind": "return_funds"}, wanted=DONE, what="return")
    assert row["status"] == "executed"
    assert [(method, path) for method, path, _ in api.calls] == [
        ("POST", "/v1/cases/c-1/instructions"),
        ("POST", "/v1/instructions/i-1/cancel"),
        ("POST", "/v1/cases/c-1/instructions"),
    ]
    assert "issued again" in api.calls[1][2]["note"]


def test_the_story_still_fails_when_every_attempt_goes_unanswered():
    api = Api(["acknowledged", "rejected", "acknowledged"])
    with pytest.raises(StoryFailed, match="return ended acknowledged"):
        _story(api).issue("operator", {"id": "c-1"}, {"kind": "return_funds"}, wanted=DONE, what="return")
    assert sum(path.endswith("/cancel") for _, path, _ in api.calls) == 2


class Alerts:
    """The alerts API: `/v1/alerts` filtered by typology and status, as coordination filters."""

    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts = alerts

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        wanted = kwargs["params"]
        items = [
            a for a in self.alerts if a["typology"] == wanted["typology"] and a["status"] == wanted["status"]
        ]
        return {"items": items}


def _alert(typology: str, status: str, bank: str = "bank-c") -> dict[str, Any]:
    subject = {"phone": "+8613900000001", "payee_account": "6228000000000001", "payee_institution": bank}
    return {
        "id": f"{typology}-{status}-{bank}",
        "typology": typology,
        "status": status,
        "subject": subject,
        "amount_at_risk": "1000.00",
        "score": 0.9,
        "reasons": ["r"],
    }


def test_the_story_takes_a_new_alert_about_a_victim_at_an_answering_bank_never_one_taken_before():
    """A second story in the same make run took the alert the first had escalated (409 on triage)."""
    story = _story(Api([]))
    story.args.alert_wait = 0.0
    story.api = Alerts(  # type: ignore[assignment]
        [
            _alert("call_then_transfer", "escalated"),  # the first story's
            _alert("call_then_transfer", "new", bank="bank-h"),  # nothing answers bank-h
            _alert("mule_fan_in", "new"),
            _alert("suspicious_payment", "new"),
        ]
    )
    assert story.alert()["id"] == "suspicious_payment-new-bank-c"
    story.api.alerts.append(_alert("call_then_transfer", "new"))  # type: ignore[attr-defined]
    assert story.alert()["id"] == "call_then_transfer-new-bank-c"  # preferred when there is one
