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
