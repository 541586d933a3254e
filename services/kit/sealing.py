"""Seals secrets at rest with AES-256-GCM under a key from the settings: the notifier's queued message
bodies (they carry the answer link, whose token must not sit readable in the database), the console's
session cookies (they carry the signed-in person's credential) and the institutions' webhook signing
secrets."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Sealer:
    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("a sealing key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, *, context: bytes) -> bytes:
        """`context` (a delivery id, a cookie name) is bound in: a sealed value cannot be moved elsewhere."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], context)
