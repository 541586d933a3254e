"""A partition given back by a rebalance resumes from the state in memory only if nothing was committed on
it meanwhile; a partition that went elsewhere, or moved on, is forgotten (bookkeeping only: the store is
off, so nothing is written or read)."""

from __future__ import annotations

from aiokafka import TopicPartition

from tests.scorer.helpers import bookkeeping


async def test_only_a_partition_given_back_unchanged_keeps_its_state_in_memory():
    dropped: list[int] = []
    checkpoints = bookkeeping(drop=dropped.append)
    back, moved_on, gone = TopicPartition("t", 1), TopicPartition("t", 2), TopicPartition("t", 0)
    await checkpoints.rewind({back: None, moved_on: None, gone: None})  # nothing committed yet
    await checkpoints.after_commit({back: 9, moved_on: 8, gone: 3})
    await checkpoints.release({back, moved_on, gone})
    assert dropped == []  # kept until the next assignment says where they are

    seek = await checkpoints.rewind({back: 9, moved_on: 12})

    assert checkpoints.reused == 1 and seek[back] == 9 and checkpoints.positions[back] == 9
    assert sorted(dropped) == [0, 2]  # gone elsewhere; committed past this member's state
    # With no snapshot to restore, the stale one is rebuilt from the start of its input, silently.
    assert seek[moved_on] == 0 and checkpoints.replay_until[moved_on] == 12
    assert not checkpoints.kept


async def test_a_partition_revoked_mid_replay_is_not_kept():
    dropped: list[int] = []
    checkpoints = bookkeeping(drop=dropped.append)
    tp = TopicPartition("t", 4)
    await checkpoints.rewind({tp: 6})  # no snapshot: replays up to 6 from the start
    await checkpoints.release({tp})  # before the replay reached 6: the state is behind its offsets
    assert dropped == [4]
    await checkpoints.rewind({tp: 6})
    assert checkpoints.reused == 0 and checkpoints.replay_until[tp] == 6


async def test_a_partition_split_from_its_co_partitioned_topic_is_not_resumed():
    """While a group changes, partition n of one input may come back without partition n of the other:
    the state kept for both is stale for either alone, and only what is assigned is sought."""
    dropped: list[int] = []
    checkpoints = bookkeeping(drop=dropped.append)
    events, alerts = TopicPartition("events", 3), TopicPartition("alerts", 3)
    await checkpoints.rewind({events: None, alerts: None})
    await checkpoints.after_commit({events: 7, alerts: 2})
    await checkpoints.release({events, alerts})

    seek = await checkpoints.rewind({events: 7})

    assert checkpoints.reused == 0 and dropped == [3]
    assert set(seek) <= {events}  # never a partition this member was not given
    assert checkpoints.replay_until == {events: 7}  # rebuilt (no store here: from the start)
