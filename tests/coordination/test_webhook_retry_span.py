"""How long the relay tries a webhook message before giving it up, with the default settings, is what
docs/integration.md tells the institutions, and ends well before the webhook backlog alert could fire: a
bank that is down shows as dead messages (escalated), not as a backlog."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace
from typing import cast

import pytest
import yaml

from deploy.local.common import REPO_ROOT
from services.coordination.delivery.relay import Relay
from services.coordination.settings import CoordinationSettings
from tests.deploy.tools import RULES


def _waits_s(settings: CoordinationSettings, jitter: float, monkeypatch: pytest.MonkeyPatch) -> float:
    """The relay's own waits between the attempts of one message, each drawn at `jitter`."""
    monkeypatch.setattr(random, "uniform", lambda low, high: jitter)
    relay = cast(Relay, SimpleNamespace(settings=settings))  # _backoff reads only the settings
    return sum(Relay._backoff(relay, n).total_seconds() for n in range(1, settings.webhook_max_attempts))


def test_a_down_banks_messages_are_given_up_in_the_span_the_docs_give(monkeypatch):
    settings = CoordinationSettings()
    assert _waits_s(settings, 1.0, monkeypatch) == 127
    # Soonest: every attempt refused at once, each wait its shortest. Latest: every call timing out, each
    # wait its longest, and a relay poll before each retry.
    soonest = _waits_s(settings, 0.8, monkeypatch)
    latest = (
        _waits_s(settings, 1.2, monkeypatch)
        + settings.webhook_max_attempts * settings.webhook_timeout_s
        + (settings.webhook_max_attempts - 1) * settings.relay_poll_s
    )
    assert (round(soonest, -1), round(latest, -1)) == (100, 200)
    told = (REPO_ROOT / "docs" / "integration.md").read_text()
    assert "1 + 2 + … + 64 = 127 s" in told
    assert "between about 100 s" in told and "and 200 s" in told

    rules = yaml.safe_load(RULES.read_text())
    [backlog] = [
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "StoplineOutboxWebhookBacklog"
    ]
    threshold_s = float(re.search(r"> (\d+)$", backlog["expr"])[1])  # type: ignore[index]
    assert latest < threshold_s
