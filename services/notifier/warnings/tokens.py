"""One-time answer tokens: 256 random bits, shown once in the message, stored only as a SHA-256.

The token is random, so it says nothing about the person; a fast hash suffices (nothing to guess).
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> tuple[str, str]:
    """A fresh token and the digest to store."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
