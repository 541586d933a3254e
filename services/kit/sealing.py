"""Seals secrets at rest with AES-256-GCM under a key from the settings: the notifier's queued message
bodies (they carry the answer link, whose token must not sit readable in the database), the console's
session cookies (they carry the signed-in person's credential) and the institutions' webhook signing
secrets."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _aead(key_b64: str) -> AESGCM:
    key = base64.b64decode(key_b64)
    if len(key) != 32:
        raise ValueError("a sealing key must be 32 bytes, base64-encoded")
    return AESGCM(key)


class Sealer:
    """Seals under `key_b64`; opens under it or a `previous` key (a key being rotated out: what it sealed
    still opens until it is sealed again, see `reseal`)."""

    def __init__(self, key_b64: str, *, previous: Sequence[str] = ()) -> None:
        self._aead = _aead(key_b64)
        self._previous = [_aead(key) for key in previous if key]

    def seal(self, plain: bytes, *, context: bytes) -> bytes:
        """`context` (a delivery id, a cookie name) is bound in: a sealed value cannot be moved elsewhere."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        for aead in (self._aead, *self._previous):
            try:
                return aead.decrypt(sealed[:12], sealed[12:], context)
            except InvalidTag:
                continue
        raise InvalidTag

    def reseal(self, sealed: bytes, *, context: bytes) -> bytes:
        """The same secret sealed under the current key (whichever key sealed it)."""
        return self.seal(self.open(sealed, context=context), context=context)
