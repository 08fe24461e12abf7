"""The commit protocol (consumer/checkpoint.py): what is committed, when, and after which failure."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumer.checkpoint import RESEND_AFTER_S, Checkpoint

A0 = ("crm.public.customers", 0)
A1 = ("crm.public.customers", 1)


class FakeCommitter:
    """Records every commit; fails the next ``fail_next`` of them as a revoked partition would."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[tuple[str, int], int], bool]] = []
        self.fail_next = 0

    def commit(self, offsets: list[TopicPartition], *, asynchronous: bool) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise KafkaException(KafkaError(KafkaError._STATE, "partitions revoked"))
        self.calls.append(({(tp.topic, tp.partition): tp.offset for tp in offsets}, asynchronous))


@pytest.fixture
def committer() -> FakeCommitter:
    return FakeCommitter()


@pytest.fixture
def checkpoint(committer: FakeCommitter) -> Checkpoint:
    return Checkpoint(committer)


def acknowledge(checkpoint: Checkpoint, offsets: dict[tuple[str, int], int]) -> None:
    checkpoint.on_commit(None, [TopicPartition(t, p, o) for (t, p), o in offsets.items()])


def test_batch_commits_past_the_last_applied_offset_asynchronously(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41, A1: 9})
    assert committer.calls == [({A0: 42, A1: 10}, True)]
    assert checkpoint.sent(A0) == 42
    assert checkpoint.committed(A0) is None  # not until the broker acknowledges


def test_acknowledgement_moves_sent_to_committed(checkpoint: Checkpoint) -> None:
    checkpoint.commit_batch({A0: 41})
    acknowledge(checkpoint, {A0: 42})
    assert checkpoint.committed(A0) == 42


def test_failed_acknowledgement_keeps_the_last_committed_offset(checkpoint: Checkpoint) -> None:
    checkpoint.commit_batch({A0: 41})
    acknowledge(checkpoint, {A0: 42})
    checkpoint.commit_batch({A0: 99})
    checkpoint.on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [TopicPartition(*A0, 100)])
    assert checkpoint.committed(A0) == 42
    assert checkpoint.sent(A0) == 100


def test_acknowledgement_without_an_offset_is_not_a_commit(checkpoint: Checkpoint) -> None:
    checkpoint.commit_batch({A0: 41})
    checkpoint.on_commit(None, [TopicPartition(*A0)])  # OFFSET_INVALID: nothing was stored
    assert checkpoint.committed(A0) is None


def test_commit_refused_outright_is_not_remembered_as_sent(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    committer.fail_next = 1
    checkpoint.commit_batch({A0: 41})
    assert checkpoint.sent(A0) is None
    assert committer.calls == []


def test_next_batch_after_a_partial_failure_covers_the_earlier_records(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    committer.fail_next = 1
    checkpoint.commit_batch({A0: 41})
    checkpoint.commit_batch({A0: 50})
    assert committer.calls == [({A0: 51}, True)]


def test_revoke_commits_unacknowledged_offsets_synchronously_then_forgets_them(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41, A1: 9})
    acknowledge(checkpoint, {A1: 10})
    checkpoint.commit_revoked([A0, A1])
    # A1 is already acknowledged at 10: only A0 is re-sent, and synchronously.
    assert committer.calls[-1] == ({A0: 42}, False)
    assert checkpoint.committed(A0) == 42
    assert checkpoint.sent(A0) is None
    assert checkpoint.sent(A1) is None


def test_revoke_leaves_other_partitions_pending(checkpoint: Checkpoint, committer: FakeCommitter) -> None:
    checkpoint.commit_batch({A0: 41, A1: 9})
    checkpoint.commit_revoked([A0])
    assert committer.calls[-1] == ({A0: 42}, False)
    assert checkpoint.sent(A1) == 10


def test_shutdown_commits_every_pending_offset_synchronously(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41})
    checkpoint.commit_batch({A1: 9})
    checkpoint.commit_pending()
    assert committer.calls[-1] == ({A0: 42, A1: 10}, False)


def test_shutdown_with_everything_acknowledged_sends_nothing(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41})
    acknowledge(checkpoint, {A0: 42})
    checkpoint.commit_pending()
    assert committer.calls == [({A0: 42}, True)]


def test_shutdown_commit_that_fails_leaves_the_records_to_redeliver(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41})
    committer.fail_next = 1
    checkpoint.commit_pending()
    assert checkpoint.committed(A0) is None


def _fail_acknowledgement(checkpoint: Checkpoint) -> None:
    # What the broker answers to an asynchronous commit sent with the generation a rebalance ended.
    checkpoint.on_commit(KafkaError(KafkaError.ILLEGAL_GENERATION), [])


def test_idle_loop_resends_offsets_whose_commit_failed(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41, A1: 9})
    acknowledge(checkpoint, {A1: 10})
    _fail_acknowledgement(checkpoint)
    checkpoint.resend_failed(time.monotonic() + RESEND_AFTER_S)
    assert committer.calls[-1] == ({A0: 42}, True)  # only what the broker has not acknowledged
    acknowledge(checkpoint, {A0: 42})
    assert checkpoint.committed(A0) == 42


def test_resend_waits_for_its_delay_and_happens_once_per_failure(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41})
    _fail_acknowledgement(checkpoint)
    checkpoint.resend_failed(time.monotonic())  # too soon: the rebalance is still going on
    assert len(committer.calls) == 1
    later = time.monotonic() + RESEND_AFTER_S
    checkpoint.resend_failed(later)
    checkpoint.resend_failed(later + 5)
    assert len(committer.calls) == 2


def test_idle_loop_without_a_failed_commit_sends_nothing(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41})
    checkpoint.resend_failed(time.monotonic() + 60)
    assert len(committer.calls) == 1


def test_resend_skips_partitions_revoked_since_the_failure(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    checkpoint.commit_batch({A0: 41, A1: 9})
    _fail_acknowledgement(checkpoint)
    checkpoint.commit_revoked({A1})  # the new owner starts from what the revoke committed
    checkpoint.resend_failed(time.monotonic() + RESEND_AFTER_S)
    assert committer.calls[-1] == ({A0: 42}, True)


def test_an_assigned_partition_starts_at_the_groups_committed_offset_and_forgets_stale_sends(
    checkpoint: Checkpoint, committer: FakeCommitter
) -> None:
    # Sent before the partition was lost, never acknowledged; the group moved on meanwhile.
    checkpoint.commit_batch({A0: 41})
    checkpoint.assigned({A0: 90})
    assert checkpoint.committed(A0) == 90  # the lag gauges read it, without asking the broker
    assert checkpoint.sent(A0) is None
    checkpoint.commit_pending()
    assert committer.calls == [({A0: 42}, True)]  # the stale offset is never sent again
