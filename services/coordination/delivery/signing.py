"""Webhook signatures with the institution's secret (the scheme: `services.kit.signing`).

Headers sent with every webhook:
    Stopline-Timestamp: 1764236800
    Stopline-Signature: v1=<hex digest>[,v1=<hex digest>]
    Idempotency-Key:    <message id>   (the instruction id for the instruction itself)
A receiver recomputes the digest, compares in constant time with each signature given (while a rotated
secret overlaps, there is one per active secret), refuses timestamps older than its tolerance (replays),
and drops message ids it has already processed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from services.kit import signing

TIMESTAMP = "Stopline-Timestamp"
SIGNATURE = "Stopline-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"


def headers(
    secret: str | Sequence[str], body: bytes, message_id: str, *, now: float | None = None
) -> dict[str, str]:
    """Signed with each active secret (one, or two while a rotation overlaps)."""
    ts = int(now if now is not None else time.time())
    return {
        TIMESTAMP: str(ts),
        SIGNATURE: signing.sign(secret, ts, body),
        IDEMPOTENCY_KEY: message_id,
        "Content-Type": "application/json",
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True when the signature is right and the timestamp is within `tolerance_s` of now."""
    lowered = {k.lower(): v for k, v in received.items()}
    problem = signing.refusal(
        secret,
        timestamp=lowered.get(TIMESTAMP.lower()),
        signatures=lowered.get(SIGNATURE.lower()),
        body=body,
        now=now if now is not None else time.time(),
        tolerance_s=tolerance_s,
    )
    return problem is None
