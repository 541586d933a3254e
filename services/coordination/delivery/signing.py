"""Webhook signatures: HMAC-SHA256 over `<unix timestamp>.<body>` with the institution's secret.

Headers sent with every webhook:
    Stopline-Timestamp: 1764236800
    Stopline-Signature: v1=<hex digest>[,v1=<hex digest>]
    Idempotency-Key:    <message id>   (the instruction id for the instruction itself)
A receiver recomputes the digest, compares in constant time with each signature given (while a rotated
secret overlaps, there is one per active secret), refuses timestamps older than its tolerance (replays),
and drops message ids it has already processed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence

TIMESTAMP = "Stopline-Timestamp"
SIGNATURE = "Stopline-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(
    secret: str | Sequence[str], body: bytes, message_id: str, *, now: float | None = None
) -> dict[str, str]:
    """Signed with each active secret (one, or two while a rotation overlaps)."""
    ts = int(now if now is not None else time.time())
    active = [secret] if isinstance(secret, str) else list(secret)
    return {
        TIMESTAMP: str(ts),
        SIGNATURE: ",".join(signature(s, ts, body) for s in active),
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
    stamp, sig = lowered.get(TIMESTAMP.lower(), ""), lowered.get(SIGNATURE.lower(), "")
    if not re.fullmatch(r"[0-9]{1,12}", stamp) or not sig:  # ASCII: "²".isdigit(), but int("²") raises
        return False
    if abs((now if now is not None else time.time()) - int(stamp)) > tolerance_s:
        return False
    expected = signature(secret, int(stamp), body)
    return any(hmac.compare_digest(expected, given.strip()) for given in sig.split(","))
