"""The webhook receiver's recipe in docs/integration.md, run as a bank would copy it: it takes what the
relay sends (one secret, or two while a rotation overlaps) and refuses a changed body, another secret and
a stale timestamp."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from services.coordination.delivery import signing

DOC = Path(__file__).parents[2] / "docs" / "integration.md"


def _recipe() -> Callable[..., bool]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    [code] = [b for b in blocks if "def genuine(" in b]
    scope: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation
    genuine = scope["genuine"]
    assert callable(genuine)
    return genuine


def test_the_documented_check_takes_what_the_relay_sends_and_nothing_else():
    genuine = _recipe()
    body = b'{"message_id": "8e2b7f0a-93c4-4d1e-b6a8-5c0f1e2d3a4b", "type": "instruction"}'
    secret = "whsec_" + "x" * 43
    sent: Mapping[str, str] = signing.headers(secret, body, "8e2b7f0a-93c4-4d1e-b6a8-5c0f1e2d3a4b")
    assert genuine(secret, sent, body)
    assert genuine("whsec_old", signing.headers(["whsec_old", secret], body, "m"), body)  # rotation
    assert not genuine(secret, sent, body.replace(b"instruction", b"notice"))
    assert not genuine("whsec_other", sent, body)
    stale = signing.headers(secret, body, "m", now=time.time() - 600)
    assert not genuine(secret, stale, body)
