"""The warning channels' signed requests, both ways (`services.kit.signing`), under these headers."""

from __future__ import annotations

from services.kit import signing
from services.kit.errors import NotAuthenticated

TIMESTAMP = "X-Stopline-Timestamp"
SIGNATURE = "X-Stopline-Signature"


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP: str(timestamp), SIGNATURE: signing.sign(secret, timestamp, body)}


def verify(
    secret: str, *, timestamp: str | None, sig: str | None, body: bytes, now: float, tolerance_s: float
) -> None:
    """Raise NotAuthenticated unless the signature matches and the timestamp is recent."""
    problem = signing.refusal(
        secret, timestamp=timestamp, signatures=sig, body=body, now=now, tolerance_s=tolerance_s
    )
    if problem is not None:
        raise NotAuthenticated(problem)
