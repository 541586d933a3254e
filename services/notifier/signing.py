"""HMAC-SHA256 signatures over "<timestamp>.<body>" for requests to and from the warning channels.

The timestamp is signed so that a captured request cannot be replayed after `tolerance_s`.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from services.kit.errors import NotAuthenticated

TIMESTAMP = "X-Stopline-Timestamp"
SIGNATURE = "X-Stopline-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP: str(timestamp), SIGNATURE: signature(secret, timestamp, body)}


def verify(
    secret: str, *, timestamp: str | None, sig: str | None, body: bytes, now: float, tolerance_s: float
) -> None:
    """Raise NotAuthenticated unless the signature matches and the timestamp is recent."""
    # ASCII digits only: str.isdigit() takes "²", which int() refuses, and a long one int() refuses too.
    if not timestamp or not sig or not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise NotAuthenticated("missing or malformed signature headers")
    if abs(now - int(timestamp)) > tolerance_s:
        raise NotAuthenticated("signature timestamp outside the accepted window")
    if not hmac.compare_digest(signature(secret, int(timestamp), body), sig):
        raise NotAuthenticated("bad signature")
