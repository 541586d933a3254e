"""SCRAM credentials through Kafka's admin protocol (AlterUserScramCredentials, KIP-554), which aiokafka's
admin client does not offer: the request is written here against its published schema."""

from __future__ import annotations

import hashlib
import os

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

SCRAM_SHA_512 = 2  # the protocol's mechanism number
ITERATIONS = 8192  # Kafka refuses fewer than 4096


class _AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentials(Request[_AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, users: dict[str, str]) -> None:
        self.upsertions: list[tuple[object, ...]] = [
            (name, SCRAM_SHA_512, ITERATIONS, salt, _salted(password, salt), {})
            for name, password in users.items()
            for salt in (os.urandom(32),)
        ]

    def build(
        self, request_struct_class: type[_AlterUserScramCredentialsRequest_v0]
    ) -> _AlterUserScramCredentialsRequest_v0:
        return request_struct_class([], self.upsertions, {})


def _salted(password: str, salt: bytes) -> bytes:
    # SCRAM's Hi() is PBKDF2 with the mechanism's HMAC (RFC 5802).
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)


async def upsert_users(admin: AIOKafkaAdminClient, users: dict[str, str]) -> None:
    """Create the SCRAM-SHA-512 users, or set their passwords (by name); raises on any refusal."""
    if not users:
        return
    response = await admin._send_request(_AlterUserScramCredentials(users))  # noqa: SLF001
    failed = {user: message or code for user, code, message, _ in response.results if code}
    if failed:
        raise RuntimeError(f"Kafka refused SCRAM credentials: {failed}")
