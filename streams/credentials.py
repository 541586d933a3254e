"""SCRAM credentials and ACLs through Kafka's admin protocol, which aiokafka's admin client (0.14) does not
offer: DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) are written here against their
published schemas; the ACL requests use aiokafka's request structs, many bindings per request."""

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
MECHANISMS = {1: "SCRAM-SHA-256", SCRAM_SHA_512: "SCRAM-SHA-512"}
ITERATIONS = 8192  # Kafka refuses fewer than 4096
RESOURCE_NOT_FOUND = 91  # Kafka's error for a user without the credential asked about (not in aiokafka)


class _DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields)),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _DescribeUserScramCredentials(Request[_DescribeUserScramCredentialsRequest_v0]):
    API_KEY = 50

    def __init__(self, users: Sequence[str]) -> None:
        self.users = users

    def build(
        self, request_struct_class: type[_DescribeUserScramCredentialsRequest_v0]
    ) -> _DescribeUserScramCredentialsRequest_v0:
        return request_struct_class([(user, {}) for user in self.users], {})


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

    def __init__(self, users: dict[str, str], deletions: Sequence[tuple[str, int]] = ()) -> None:
        self.upsertions: list[tuple[object, ...]] = [
            (name, SCRAM_SHA_512, ITERATIONS, salt, _salted(password, salt), {})
            for name, password in users.items()
            for salt in (os.urandom(32),)
        ]
        self.deletions: list[tuple[object, ...]] = [(name, mechanism, {}) for name, mechanism in deletions]

    def build(
        self, request_struct_class: type[_AlterUserScramCredentialsRequest_v0]
    ) -> _AlterUserScramCredentialsRequest_v0:
        return request_struct_class(self.deletions, self.upsertions, {})


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


async def scram_mechanisms(admin: AIOKafkaAdminClient, user: str) -> list[int]:
    """The SCRAM mechanisms `user` has a credential for (none: an unknown user, or one revoked)."""
    response = await admin._send_request(_DescribeUserScramCredentials([user]))  # noqa: SLF001
    if response.error_code:
        raise RuntimeError(f"Kafka refused to describe SCRAM credentials: {response.error_message}")
    ((_, code, message, infos, _),) = response.results
    if code == RESOURCE_NOT_FOUND:
        return []
    if code:
        raise RuntimeError(f"Kafka refused to describe the SCRAM credentials of {user}: {message or code}")
    return sorted(mechanism for mechanism, _, _ in infos)


async def delete_user(admin: AIOKafkaAdminClient, user: str) -> list[str]:
    """Delete every SCRAM credential of `user`; returns the mechanisms deleted (none if it had none).
    Kafka then refuses any new login as the user; a connection already open is closed at its next
    re-authentication (the brokers' `connections.max.reauth.ms`)."""
    mechanisms = await scram_mechanisms(admin, user)
    if not mechanisms:
        return []
    response = await admin._send_request(  # noqa: SLF001
        _AlterUserScramCredentials({}, [(user, m) for m in mechanisms])
    )
    # One result per user; a credential already gone (a revoke running beside this one) is as good as deleted.
    failed = {
        name: message or code
        for name, code, message, _ in response.results
        if code not in (0, RESOURCE_NOT_FOUND)
    }
    if failed:
        raise RuntimeError(f"Kafka refused to delete SCRAM credentials: {failed}")
    return [MECHANISMS.get(m, str(m)) for m in mechanisms]


# ACLs (KIP-140), version 1 of each request: aiokafka has the structs but builds one binding per request.
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5  # resource types
CLUSTER_NAME = "kafka-cluster"  # the one name a cluster grant may have
ANY, LITERAL, PREFIXED = 1, 3, 4  # pattern types (ANY only in filters); ANY is also any operation, permission
# Every operation Kafka names: streams.acls grants a few; a binding read back (one made by hand) may have any.
OPERATIONS = {
    "all": 2,
    "read": 3,
    "write": 4,
    "create": 5,
    "delete": 6,
    "alter": 7,
    "describe": 8,
    "cluster_action": 9,
    "describe_configs": 10,
    "alter_configs": 11,
    "idempotent_write": 12,
    "create_tokens": 13,
    "describe_tokens": 14,
    "two_phase_commit": 15,
}
PERMISSIONS = {"deny": 2, "allow": 3}
_RESOURCE_NAMES = {TOPIC: "topic", GROUP: "group", CLUSTER: "cluster", TRANSACTIONAL_ID: "transactional-id"}
_PATTERN_NAMES = {LITERAL: "literal", PREFIXED: "prefixed"}
USER = "User:"  # how a SCRAM user is written as a principal


@dataclass(frozen=True)
class AclBinding:
    principal: str  # a user name; written as `User:<name>`
    resource_type: int
    name: str
    pattern_type: int
    operation: str
    permission: str = "allow"
    host: str = "*"

    def entry(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            self.resource_type,
            self.name,
            self.pattern_type,
            f"{USER}{self.principal}",
            self.host,
            OPERATIONS[self.operation],
            PERMISSIONS[self.permission],
        )

    def __str__(self) -> str:
        """`allow read on topic instructions.bank-d (literal)`: how an audit line names it."""
        resource = _RESOURCE_NAMES.get(self.resource_type, f"resource-type-{self.resource_type}")
        pattern = _PATTERN_NAMES.get(self.pattern_type, f"pattern-type-{self.pattern_type}")
        host = "" if self.host == "*" else f" from {self.host}"
        return f"{self.permission} {self.operation} on {resource} {self.name} ({pattern}){host}"


def _read_back(
    resource_type: int,
    name: str,
    pattern_type: int,
    principal: str,
    host: str,
    operation: int,
    permission: int,
) -> AclBinding:
    """A binding as Kafka describes it, in the form streams.acls writes."""
    operations = {code: op for op, code in OPERATIONS.items()}
    permissions = {code: p for p, code in PERMISSIONS.items()}
    return AclBinding(
        principal.removeprefix(USER),
        resource_type,
        name,
        pattern_type,
        operations.get(operation, f"operation-{operation}"),
        permissions.get(permission, f"permission-{permission}"),
        host,
    )


def _of_principal(principal: str) -> tuple[int, None, int, str, None, int, int]:
    """A filter matching every binding of the user: any resource, name, pattern, host, operation."""
    return (ANY, None, ANY, f"{USER}{principal}", None, ANY, ANY)


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([b.entry() for b in self.bindings])


_Filter = tuple[int, str | None, int, str | None, str | None, int, int]


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def __init__(self, matching: _Filter = (ANY, None, ANY, None, None, ANY, ANY)) -> None:
        self.matching = matching  # by default every binding

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(*self.matching)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: Sequence[_Filter]) -> None:
        self.filters = filters

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(list(self.filters))


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


async def acls_of(admin: AIOKafkaAdminClient, principal: str) -> list[AclBinding]:
    """Every ACL binding of the user `principal`, whoever made it."""
    response = await admin._send_request(_DescribeAcls(_of_principal(principal)))  # noqa: SLF001
    if response.error_code:
        raise RuntimeError(f"Kafka refused to describe ACLs: {response.error_message}")
    return sorted(
        (_read_back(t, name, pattern, *acl) for t, name, pattern, acls in response.resources for acl in acls),
        key=_order,
    )


async def delete_acls_of(admin: AIOKafkaAdminClient, principal: str) -> list[AclBinding]:
    """Delete every ACL binding of the user `principal`, whoever made it (one filter on the principal,
    not the list streams.acls grants); returns those deleted, none if it had none."""
    response = await admin._send_request(_DeleteAcls([_of_principal(principal)]))  # noqa: SLF001
    ((code, message, matching),) = response.filter_responses
    if code:
        raise RuntimeError(f"Kafka refused to delete the ACLs of {principal}: {message or code}")
    failed = [(str(_read_back(*m)), error or c) for c, error, *m in matching if c]
    if failed:
        raise RuntimeError(f"Kafka did not delete ACLs of {principal}: {failed[:5]}")
    return sorted((_read_back(*m) for _, _, *m in matching), key=_order)


def _order(binding: AclBinding) -> tuple[int, str, int, str, str, str]:
    return (
        binding.resource_type,
        binding.name,
        binding.pattern_type,
        binding.operation,
        binding.permission,
        binding.host,
    )


async def delete_acls_under(admin: AIOKafkaAdminClient, prefix: str) -> int:
    """Delete every ACL whose resource name starts with `prefix`; returns how many resources had some."""
    response = await admin._send_request(_DescribeAcls())  # noqa: SLF001
    if response.error_code:
        raise RuntimeError(f"Kafka refused to describe ACLs: {response.error_message}")
    resources = sorted(
        {(t, name, pattern) for t, name, pattern, _ in response.resources if name.startswith(prefix)}
    )
    if resources:
        await admin._send_request(  # noqa: SLF001
            _DeleteAcls([(t, name, p, None, None, ANY, ANY) for t, name, p in resources])
        )
    return len(resources)
