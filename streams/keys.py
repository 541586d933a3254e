"""Partition keys. Keys are keyed hashes, not phone or account numbers, so no personal data sits in
broker indexes or tooling output; the same input always gives the same key, hence the same partition."""

from __future__ import annotations

import hashlib


def person_key(phone: str) -> bytes:
    """Key of every event about the person with this phone number (see streams.topics)."""
    return b"p:" + hashlib.blake2b(phone.encode(), digest_size=12).hexdigest().encode()


def account_key(institution: str, account: str) -> bytes:
    return b"a:" + hashlib.blake2b(f"{institution}/{account}".encode(), digest_size=12).hexdigest().encode()
