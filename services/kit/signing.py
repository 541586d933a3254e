"""Request signatures: HMAC-SHA256 over `<unix timestamp>.<body>`, the one scheme of every signed call
Stopline makes or takes (webhooks to institutions, the warning channels and their receipts; each names its
own headers). The timestamp is signed so that a captured request cannot be replayed outside the receiver's
tolerance; while a rotated secret overlaps the request carries one signature per active secret."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def sign(secrets: str | Sequence[str], timestamp: int, body: bytes) -> str:
    """The signature header's value: one signature per active secret, comma-separated."""
    active = [secrets] if isinstance(secrets, str) else list(secrets)
    return ",".join(signature(s, timestamp, body) for s in active)


def refusal(
    secret: str, *, timestamp: str | None, signatures: str | None, body: bytes, now: float, tolerance_s: float
) -> str | None:
    """Why a request is not signed with `secret` recently enough; None when it is."""
    # ASCII digits only: str.isdigit() takes "²", which int() refuses, and a long one int() refuses too.
    if not timestamp or not signatures or not re.fullmatch(r"[0-9]{1,12}", timestamp):
        return "missing or malformed signature headers"
    if abs(now - int(timestamp)) > tolerance_s:
        return "signature timestamp outside the accepted window"
    expected = signature(secret, int(timestamp), body)
    # compare_digest raises TypeError on a str with a non-ASCII character: such a header is no signature.
    if not signatures.isascii() or not any(
        hmac.compare_digest(expected, given.strip()) for given in signatures.split(",")
    ):
        return "bad signature"
    return None
