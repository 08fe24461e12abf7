"""Which offsets the replicator has committed, and when it may commit more: step 4 of the protocol.

    checkpoint = Checkpoint(KafkaCommitter(consumer))
    ...apply the batch, flush dead letters...
    checkpoint.commit_batch({("crm.public.customers", 0): 41})   # last offset applied, per partition
    checkpoint.commit_revoked({("crm.public.customers", 0)})      # on revoke: synchronously
    checkpoint.commit_pending()                                   # at shutdown: synchronously
    checkpoint.resend_failed(time.monotonic())                    # idle loop: after a failed commit
    checkpoint.assigned({("crm.public.customers", 0): 42})        # on assign: the group's position

The protocol, in order (consumer/service.py runs steps 1-3 before calling ``commit_batch``):
1. a batch's offsets reach the checkpoint only after its store writes and its dead letters are
   acknowledged, so no committed offset covers a write that is not durable;
2. ``commit_batch`` sends the next offset of each partition (last applied + 1) *asynchronously*, so
   the next batch does not wait for the broker, and remembers it as *sent*;
3. the broker's acknowledgement (``on_commit``) moves it to *committed*; an error leaves it sent, and
   the next commit of the partition covers it (until then a restart re-applies those records, which
   is harmless: every write carries its source change's timestamp). When no next batch comes (the
   stream went idle, typically right after the rebalance whose new generation refused the commit),
   the loop re-sends the unacknowledged offsets (``resend_failed``, at most once per
   ``RESEND_AFTER_S``): otherwise the group's committed offset, its lag and /readyz would show the
   partitions behind until the next change arrives;
4. when partitions are revoked, their sent-but-unacknowledged offsets are committed *synchronously*
   before the next owner starts, then forgotten; at shutdown every partition's are;
5. a commit that fails outright (the partitions were taken by a rebalance) is counted and dropped:
   the new owner re-applies from the last acknowledged offset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.metrics import ERRORS

__all__ = ["RESEND_AFTER_S", "Checkpoint", "Committer", "KafkaCommitter", "Partition"]

log = structlog.get_logger(__name__)

Partition = tuple[str, int]

# How long after a failed asynchronous commit the idle loop sends the unacknowledged offsets again.
RESEND_AFTER_S = 1.0


class Committer(Protocol):
    def commit(self, offsets: list[TopicPartition], *, asynchronous: bool) -> None:
        """Send the offsets; raise ``KafkaException`` when the commit cannot be made."""


class KafkaCommitter:
    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def commit(self, offsets: list[TopicPartition], *, asynchronous: bool) -> None:
        # Two literal calls: the client's type stubs overload commit() on the flag's value.
        if asynchronous:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        else:
            self._consumer.commit(offsets=offsets, asynchronous=False)


class Checkpoint:
    def __init__(self, committer: Committer) -> None:
        self._committer = committer
        # Next offset to consume, per partition: acknowledged by the group coordinator, and sent.
        self._committed: dict[Partition, int] = {}
        self._sent: dict[Partition, int] = {}
        # Monotonic time after which unacknowledged offsets are re-sent; None: no commit failed.
        self._resend_at: float | None = None

    def committed(self, partition: Partition) -> int | None:
        """The acknowledged position of ``partition`` (the next offset the group will read)."""
        return self._committed.get(partition)

    def assigned(self, committed: Mapping[Partition, int]) -> None:
        """Partitions just assigned, with the offsets the group had committed for them: their
        acknowledged position until this process commits its own."""
        for partition, offset in committed.items():
            self._committed[partition] = offset
            self._sent.pop(partition, None)

    def sent(self, partition: Partition) -> int | None:
        return self._sent.get(partition)

    def commit_batch(self, last_applied: Mapping[Partition, int]) -> None:
        """Step 2: commit, asynchronously, past the last offset applied of each partition."""
        offsets = [TopicPartition(t, p, offset + 1) for (t, p), offset in last_applied.items()]
        if self._send(offsets, asynchronous=True):
            for tp in offsets:
                self._sent[(tp.topic, tp.partition)] = tp.offset

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Step 3: the consumer's ``on_commit`` callback."""
        if error is not None:
            ERRORS.labels(kind="commit").inc()
            log.warning("commit_failed", error=str(error))
            self._resend_at = time.monotonic() + RESEND_AFTER_S
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def resend_failed(self, now: float) -> None:
        """Step 3, idle: after a failed commit, send the partitions' unacknowledged offsets again
        (asynchronously; a new failure schedules the next attempt)."""
        if self._resend_at is None or now < self._resend_at:
            return
        self._resend_at = None
        offsets = [
            TopicPartition(t, p, offset)
            for (t, p), offset in self._sent.items()
            if self._committed.get((t, p)) != offset
        ]
        self._send(offsets, asynchronous=True)

    def commit_revoked(self, partitions: Iterable[Partition]) -> None:
        """Step 4 on revoke: commit what was sent for these partitions, synchronously, then forget them."""
        revoked = set(partitions)
        self.commit_pending(revoked)
        for partition in revoked:
            self._sent.pop(partition, None)

    def commit_pending(self, partitions: set[Partition] | None = None) -> None:
        """Step 4: synchronously commit every sent offset not yet acknowledged (of ``partitions``)."""
        offsets = [
            TopicPartition(t, p, offset)
            for (t, p), offset in self._sent.items()
            if (partitions is None or (t, p) in partitions) and self._committed.get((t, p)) != offset
        ]
        if self._send(offsets, asynchronous=False):
            for tp in offsets:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _send(self, offsets: list[TopicPartition], *, asynchronous: bool) -> bool:
        if not offsets:
            return False
        try:
            self._committer.commit(offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            # Step 5: the partitions were taken by a rebalance (or the coordinator is out).
            ERRORS.labels(kind="commit").inc()
            log.warning("commit_failed", error=str(exc))
            return False
        return True
