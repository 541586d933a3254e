"""Partition keys. Keys are keyed hashes, not phone or account numbers, so no personal data sits in
broker indexes or tooling output; the same input always gives the same key, hence the same partition."""

from __future__ import annotations

import functools
import hashlib

from aiokafka.partitioner import murmur2


def person_key(phone: str) -> bytes:
    """Key of every event about the person with this phone number (see streams.topics)."""
    return b"p:" + hashlib.blake2b(phone.encode(), digest_size=12).hexdigest().encode()


def account_key(institution: str, account: str) -> bytes:
    return b"a:" + hashlib.blake2b(f"{institution}/{account}".encode(), digest_size=12).hexdigest().encode()


@functools.lru_cache(maxsize=200_000)  # a person's events come again and again: murmur2 is pure Python
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java client (and aiokafka) put a key on by default: murmur2 of the key bytes,
    made positive, modulo the partition count. A client with another partitioner (librdkafka's default is
    CRC32) puts the same key elsewhere; the scorer moves such records back (services/scorer)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
