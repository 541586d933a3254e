"""SCRAM credentials and ACLs through Kafka's admin protocol, which aiokafka's admin client does not
offer: AlterUserScramCredentials (KIP-554) is written here against its published schema; the ACL
requests use aiokafka's request structs, many bindings per request."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest_v1
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


# ACLs (KIP-140), version 1 of each request: aiokafka has the structs but builds one binding per request.
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5  # resource types
CLUSTER_NAME = "kafka-cluster"  # the one name a cluster grant may have
ANY, LITERAL, PREFIXED = 1, 3, 4  # pattern types (ANY only in filters)
ALLOW = 3
OPERATIONS = {"read": 3, "write": 4, "create": 5, "describe": 8, "describe_configs": 10}


@dataclass(frozen=True)
class AclBinding:
    principal: str  # a user name; written as `User:<name>`
    resource_type: int
    name: str
    pattern_type: int
    operation: str

    def entry(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            self.resource_type,
            self.name,
            self.pattern_type,
            f"User:{self.principal}",
            "*",
            OPERATIONS[self.operation],
            ALLOW,
        )


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([b.entry() for b in self.bindings])


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        # Every binding: any resource type (1), any name, any pattern, principal, host, operation (1: any).
        return request_struct_class(1, None, ANY, None, None, 1, 1)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, resources: Sequence[tuple[int, str, int]]) -> None:
        self.resources = resources

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class([(t, name, p, None, None, 1, 1) for t, name, p in self.resources])


async def create_acls(admin: AIOKafkaAdminClient, bindings: Sequence[AclBinding]) -> None:
    """Allow these bindings (creating one that exists changes nothing); raises on any refusal."""
    for start in range(0, len(bindings), 500):
        chunk = bindings[start : start + 500]
        response = await admin._send_request(_CreateAcls(chunk))  # noqa: SLF001
        failed = [
            (b, message or code)
            for b, (code, message) in zip(chunk, response.creation_responses, strict=True)
            if code
        ]
        if failed:
            raise RuntimeError(f"Kafka refused ACLs: {failed[:5]}")


async def delete_acls_under(admin: AIOKafkaAdminClient, prefix: str) -> int:
    """Delete every ACL whose resource name starts with `prefix`; returns how many resources had some."""
    response = await admin._send_request(_DescribeAcls())  # noqa: SLF001
    if response.error_code:
        raise RuntimeError(f"Kafka refused to describe ACLs: {response.error_message}")
    resources = sorted(
        {(t, name, pattern) for t, name, pattern, _ in response.resources if name.startswith(prefix)}
    )
    if resources:
        await admin._send_request(_DeleteAcls(resources))  # noqa: SLF001
    return len(resources)
