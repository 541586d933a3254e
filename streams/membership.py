"""Taking a dead process's static memberships out of its consumer groups at once.

A consumer with an instance name (`streams.consumer`, `group_instance_id`) is a static member: when its
process dies, the group keeps its partitions for the session timeout, so that the process started again
takes them back with no rebalance. That wait is right when nobody knows the process is gone; a
supervisor that saw it exit does know, and then the group's other members need not wait for the session
timeout. `Expeller.expel` removes the instance from its groups (KIP-345's removal of a static member,
LeaveGroup v3) naming both the instance and the member id the dead process had: each group rebalances at
once and its other members take the partitions. A member id names one process: if the process started
again has joined meanwhile (the same instance name, a new member id), the broker refuses the removal
(FENCED_INSTANCE_ID) and the new process keeps its place, so the removal may go on while it starts. The
member ids come from descriptions of the groups received before the process was seen to end: one taken
later may already show the new process, which the removal would then throw out.

aiokafka 0.14 knows LeaveGroup v0-v1 only (a member by its member id), hence the v3 request here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String

log = logging.getLogger(__name__)

# UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND, FENCED_INSTANCE_ID: not a member of that group, or the instance is
# another process's now (it started again and joined): nothing to remove.
GONE = (25, 69, 82)
MOVED = {14, 15, 16}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


class _LeaveGroupResponseV3(Response):
    API_KEY = 13
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(
                ("member_id", String("utf-8")), ("group_instance_id", String("utf-8")), ("error_code", Int16)
            ),
        ),
    )


class _LeaveGroupRequestV3(RequestStruct):
    API_KEY = 13
    API_VERSION = 3
    RESPONSE_TYPE = _LeaveGroupResponseV3
    SCHEMA = Schema(
        ("group", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


_Struct: TypeAlias = _LeaveGroupRequestV3


class RemoveStaticMember(Request[_Struct]):
    API_KEY = 13

    def __init__(self, group: str, instance: str, member_id: str) -> None:
        self.group = group
        self.instance = instance
        self.member_id = member_id

    def build(self, request_struct_class: type[_Struct]) -> _Struct:
        return request_struct_class(self.group, [(self.member_id, self.instance)])


async def _groups(admin: AIOKafkaAdminClient, prefix: str, timeout_s: float) -> tuple[set[str], bool]:
    """The consumer groups named with `prefix` that the reachable brokers coordinate, and whether every
    broker answered (a broker down coordinates none now)."""
    cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    brokers = [broker["node_id"] for broker in cluster.get("brokers") or ()]
    listed = await asyncio.gather(
        *(asyncio.wait_for(admin.list_consumer_groups([node]), timeout_s) for node in brokers),
        return_exceptions=True,
    )
    found = {
        str(group[0])
        for groups in listed
        if not isinstance(groups, BaseException)
        for group in groups
        if str(group[0]).startswith(prefix)
    }
    return found, not any(isinstance(groups, BaseException) for groups in listed)


@dataclass
class Expelled:
    removed: list[str] = field(default_factory=list)  # groups the instance was taken out of
    failed: list[str] = field(default_factory=list)  # groups that could not be asked: left to the timeout
    unknown: bool = False  # no group described before the end: every group is left to the timeout


class Expeller:
    """Removes dead instances from their groups through one admin client. What it learns of the cluster
    it keeps: the groups named with its prefix, their last few descriptions (when each was received, and
    the members), and each group's coordinator. A removal asks the groups where the instance was a member,
    beside another instance, in the last description received before it ended (not a group it had to
    itself: nobody would take anything over, and its restart takes its partitions back with no
    rebalance), each at the coordinator known, so that it does not wait on a broker that is down or cut
    off; a group whose coordinator does not answer is asked again, its coordinator looked up anew, until
    the removal's deadline (a coordinator moves within seconds of its node's fault). Describe often: a
    process that joined since the last description before its end is not known by its member id, and is
    left to the session timeout."""

    RETRY_EVERY_S = 0.5
    KEPT = 3  # descriptions a group: a removal may start a little after a describe that came later

    def __init__(self, admin: AIOKafkaAdminClient, prefix: str = "", timeout_s: float = 1.5) -> None:
        self.admin = admin
        self.prefix = prefix
        self.timeout_s = timeout_s  # each request's
        # group: (when received, on `time.monotonic`; member ids, a static member's `<instance>-<uuid>`)
        self.described: dict[str, deque[tuple[float, list[str]]]] = {}
        self.coordinators: dict[str, int] = {}
        self._describing: asyncio.Task[None] | None = None

    @property
    def members(self) -> dict[str, list[str]]:
        """Each group's members, as last described."""
        return {group: seen[-1][1] for group, seen in self.described.items()}

    async def expel(self, instance: str, *, ended_at: float, deadline_s: float = 0.0) -> Expelled:
        """Remove the member ids the static member named `instance` had, in the last description received
        before `ended_at` (`time.monotonic`: when its process was seen to have ended), from the consumer
        groups it shared with another instance. A group that cannot be reached is asked again for
        `deadline_s`, then left to its session timeout."""
        mine = f"{instance}-"
        dead = {}
        known = False
        for group, seen in self.described.items():
            before = [members for at, members in seen if at <= ended_at]
            if not before:
                continue
            known = True
            for member in before[-1]:
                if member.startswith(mine) and any(not m.startswith(mine) for m in before[-1]):
                    dead[group] = member
        until = time.monotonic() + deadline_s
        outcomes = await asyncio.gather(
            *(self._remove_until(group, instance, member, until) for group, member in sorted(dead.items()))
        )
        if self._describing is None or self._describing.done():
            self._describing = asyncio.create_task(self.describe())
        found = Expelled(unknown=not known)
        for group, outcome in zip(sorted(dead), outcomes, strict=True):
            if outcome == "removed":
                found.removed.append(group)
            elif outcome == "failed":
                found.failed.append(group)
        return found

    async def describe(self) -> None:
        """Learn every group's members anew (a group that cannot be described keeps what was known)."""
        try:
            groups, complete = await _groups(self.admin, self.prefix, self.timeout_s)
            if complete:  # groups gone since (deleted): forgotten
                for gone in (self.described.keys() | self.coordinators.keys()) - groups:
                    self.described.pop(gone, None)
                    self.coordinators.pop(gone, None)
            unknown = sorted(groups - self.coordinators.keys())
            found = await asyncio.gather(
                *(asyncio.wait_for(self.admin.find_coordinator(g), self.timeout_s) for g in unknown),
                return_exceptions=True,
            )
            self.coordinators.update(
                (g, node) for g, node in zip(unknown, found, strict=True) if isinstance(node, int)
            )
            # One group a request: aiokafka 0.14 fails to decode an answer describing several.
            known = sorted(groups & self.coordinators.keys())
            answers = await asyncio.gather(
                *(
                    asyncio.wait_for(
                        self.admin.describe_consumer_groups([g], group_coordinator_id=self.coordinators[g]),
                        self.timeout_s,
                    )
                    for g in known
                ),
                return_exceptions=True,
            )
            received = time.monotonic()  # no earlier than any answer: a removal may trust it less, not more
            for group, answer in zip(known, answers, strict=True):
                described = None if isinstance(answer, BaseException) else answer[0].to_object()["groups"][0]
                if described is not None and described["error_code"] == 0:
                    members = [m["member_id"] for m in described["members"]]
                    self.described.setdefault(group, deque(maxlen=self.KEPT)).append((received, members))
                else:  # its coordinator is looked up again next time
                    self.coordinators.pop(group, None)
        except Exception as exc:  # noqa: BLE001 - what was known serves meanwhile
            log.warning("consumer groups not described", extra={"fields": {"error": type(exc).__name__}})

    async def _remove_until(self, group: str, instance: str, member: str, until: float) -> str:
        while True:
            outcome = await self._remove(group, instance, member)
            if outcome != "failed":
                return outcome
            if time.monotonic() + self.RETRY_EVERY_S >= until:
                log.warning(
                    "static member not removed", extra={"fields": {"group": group, "instance": instance}}
                )
                return outcome
            await asyncio.sleep(self.RETRY_EVERY_S)

    async def _remove(self, group: str, instance: str, member: str) -> str:
        """ "removed", "absent" (not a member of the group, or replaced) or "failed" (not asked, or not
        answered)."""
        errors: list[int | str] = []  # the broker's error codes, or what the request raised
        for known in (True, False):
            if known and group not in self.coordinators:
                continue
            try:
                node = (
                    self.coordinators[group]
                    if known
                    else await asyncio.wait_for(self.admin.find_coordinator(group), self.timeout_s)
                )
                request = RemoveStaticMember(group, instance, member)
                answer = await asyncio.wait_for(self.admin._send_request(request, node), self.timeout_s)  # noqa: SLF001 - no public call
            except Exception as exc:  # noqa: BLE001 - asked again of a coordinator found anew, then left
                self.coordinators.pop(group, None)
                errors = [type(exc).__name__]
                continue
            self.coordinators[group] = node
            errors = [each[2] for each in answer.members] if answer.error_code == 0 else [answer.error_code]
            if not MOVED.intersection(errors):
                break
            self.coordinators.pop(group, None)
        if errors and all(code == 0 for code in errors):
            return "removed"
        if errors and all(code in GONE for code in errors):
            return "absent"
        log.debug("static member not removed yet", extra={"fields": {"group": group, "errors": errors}})
        return "failed"
