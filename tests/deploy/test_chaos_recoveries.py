"""The fault suite's recovery figures: service faults are also reported by what else was down while they
healed, as no instance of a service that needs PostgreSQL can be ready while it is stopped, and by whether
Kafka was whole meanwhile."""

from __future__ import annotations

from deploy.chaos.__main__ import _recoveries
from deploy.chaos.faults import Fault


def test_service_faults_are_split_by_the_infrastructure_faults_they_overlapped():
    faults = [
        Fault("service_kill", "ingest-1", at=0.0, recovery_s=3.0),  # nothing else down
        # PostgreSQL down from 10 s to 16 s; its clients all ready again at 25 s.
        Fault("database_stop", "postgres", at=10.0, recovery_s=15.0, down_s=6.0),
        Fault("service_kill", "notifier-2", at=14.0, recovery_s=12.0),  # began while it was down
        Fault("service_freeze", "ingest-2", at=18.0, recovery_s=5.0),  # after it was back
        # Writable again at 42 s (two nodes in sync); the node itself back in full sync at 45 s.
        Fault("broker_kill", "kafka-1", at=40.0, recovery_s=2.0, instance_ready_s=5.0, down_s=3.0),
        Fault("service_freeze", "coordination-1", at=38.0, recovery_s=4.0),  # healed as the node was down
        # After the node had started again, but before its partitions were all in sync (at 45 s).
        Fault("service_freeze", "blocklist-2", at=44.0, recovery_s=2.0),
        Fault("service_kill", "ingest-1", at=60.0, recovery_s=None),  # not healed: in no split
    ]

    found = _recoveries(faults)

    assert (found["service"]["n"], found["service"]["within_target"]) == (5, 4)  # the unhealed one apart
    split = {
        group: (spread["n"], spread["max"], spread["within_target"])
        for group, spread in found.items()
        if group.startswith("service_")
        and group not in ("service_instance_ready", "service_after_its_servers_back")
    }
    assert split == {
        "service_alone": (3, 5.0, 3),
        "service_with_a_kafka_node_faulted": (1, 4.0, 1),
        "service_with_postgresql_stopped": (1, 12.0, 0),
        "service_with_kafka_whole": (3, 12.0, 2),  # (PostgreSQL's stop is in it)
    }
    assert "within_target" not in found["database"]  # no target of its own


def test_a_service_fault_is_also_counted_from_when_the_servers_it_needs_were_back():
    faults = [
        Fault("service_kill", "ingest-1", at=0.0, recovery_s=3.0),  # nothing else down: 3 s
        # PostgreSQL running again at 16 s.
        Fault("database_stop", "postgres", at=10.0, recovery_s=15.0, down_s=6.0),
        Fault("service_kill", "notifier-2", at=14.0, recovery_s=12.0),  # 26 s: 10 s after it was back
        Fault("service_kill", "scorer-persons-1", at=12.0, recovery_s=11.0),  # never waits on it: 11 s
        Fault("service_freeze", "ingest-2", at=11.0, recovery_s=2.0),  # resumed before it was back: 0
        # A node's partitions writable again at 42 s.
        Fault("broker_kill", "kafka-1", at=40.0, recovery_s=2.0, instance_ready_s=5.0, down_s=3.0),
        Fault("service_freeze", "scorer-accounts-2", at=38.0, recovery_s=9.0),  # 47 s: 5 s after
        Fault("service_kill", "blocklist-1", at=43.0, recovery_s=4.0),  # after: all its own, 4 s
    ]

    found = _recoveries(faults)["service_after_its_servers_back"]

    # p50 by nearest rank: the third of the six.
    assert (found["n"], found["p50"], found["max"], found["within_target"]) == (6, 4.0, 11.0, 4)
