"""Two of each, checked on the broker: both instances of a service are members of its consumer groups and
every partition is owned; with one instance of every service killed (and kept down), the other owns all
of its group's partitions and takes the traffic; once they are back, the groups have two members again."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from deploy.chaos.stack import PREFIX, Stack, signal_child
from streams import groups, topics
from streams.admin import admin_client
from streams.connection import KafkaConnection

# Each service's consumer groups (the blocklist service has none: its jobs run in every instance).
SERVICE_GROUPS = {
    "ingest": (groups.INGEST_INTAKE,),
    "scorer-persons": (groups.SCORER_EVENTS,),
    "scorer-accounts": (groups.SCORER_ACCOUNTS,),
    "coordination": (groups.COORDINATION_ALERTS, groups.COORDINATION_RESPONSES),
    "notifier": (groups.NOTIFIER_ALERTS,),
    "blocklist": (),
}
GROUPS = {
    # The persons stage reads its alerts back too (a person's open alert meets their later payments).
    groups.SCORER_EVENTS: [topics.name(t, PREFIX) for t in (*topics.EVENT_TOPICS.values(), topics.ALERTS)],
    groups.SCORER_ACCOUNTS: [topics.name(topics.TRANSFERS_BY_ACCOUNT, PREFIX)],
    groups.COORDINATION_ALERTS: [topics.name(topics.ALERTS, PREFIX)],
    groups.COORDINATION_RESPONSES: None,  # every institution's answer topic (a pattern)
    groups.NOTIFIER_ALERTS: [topics.name(topics.ALERTS, PREFIX)],
    groups.INGEST_INTAKE: None,  # every institution's intake topic (a pattern)
}
FAMILIES = {
    groups.COORDINATION_RESPONSES: topics.responses_from(""),
    groups.INGEST_INTAKE: topics.intake_for(""),
}


async def ownership(admin: AIOKafkaAdminClient, groups: Iterable[str] = GROUPS) -> dict[str, dict[str, Any]]:
    """Per group: its members and whether every partition of its topics is owned by exactly one."""
    found: dict[str, dict[str, Any]] = {}
    names = await admin.list_topics()
    partitions = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    for group in groups:
        wanted = GROUPS[group]
        if wanted is None:
            head = topics.name(FAMILIES[group], PREFIX)
            wanted = [t for t in names if t.startswith(head)]
        full = {(t, p) for t in wanted for p in range(partitions.get(t, 0))}
        owned: list[tuple[str, int]] = []
        members: list[str] = []
        for response in await admin.describe_consumer_groups([f"{PREFIX}{group}"]):
            for described in response.to_object()["groups"]:
                for member in described["members"]:
                    members.append(member["member_id"])
                    raw = member["member_assignment"]
                    if raw:
                        assignment = ConsumerProtocolMemberAssignment.decode(raw)
                        owned += [(t, p) for t, ps in assignment.assignment for p in ps]
        found[group] = {
            "members": len(members),
            # A static member's id starts with its instance's name (`coordination-1-<uuid>`).
            "member_ids": sorted(members),
            "partitions": len(full),
            "owned_once": sorted(owned) == sorted(full) and len(set(owned)) == len(owned),
        }
    return found


async def _until(
    kafka: KafkaConnection, members: int, timeout_s: float
) -> tuple[float | None, dict[str, Any]]:
    began = time.monotonic()
    state: dict[str, Any] = {}
    async with admin_client(kafka) as admin:
        while time.monotonic() - began < timeout_s:
            try:
                state = await asyncio.wait_for(ownership(admin), 10)
            except Exception:  # noqa: BLE001 - not answering yet: looked at again
                await asyncio.sleep(0.5)
                continue
            if all(g["members"] == members and g["owned_once"] for g in state.values()):
                return round(time.monotonic() - began, 2), state
            await asyncio.sleep(0.5)
    return None, state


async def run(kafka: KafkaConnection, stack: Stack) -> dict[str, Any]:
    shared_s, shared = await _until(kafka, 2, 180)
    firsts = [c for c in stack.children if c.name.endswith("-1")]
    stack.supervisor.paused.update(c.name for c in firsts)
    for child in firsts:
        signal_child(child, signal.SIGKILL)
    moved_s, moved = await _until(kafka, 1, 120)
    await asyncio.sleep(10)  # the survivors take the traffic meanwhile (the ledger's retries say how much)
    stack.supervisor.paused.difference_update(c.name for c in firsts)
    back_s, back = await _until(kafka, 2, 180)
    return {
        "ok": None not in (shared_s, moved_s, back_s),
        "two_members_every_partition_owned_once_after_s": shared_s,
        "one_of_each_killed_all_partitions_moved_after_s": moved_s,
        "back_to_two_members_after_s": back_s,
        "groups": shared,
        "with_one_of_each": moved,
        "after": back,
    }
