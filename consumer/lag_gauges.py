"""The replicator's own lag gauges: records and seconds behind, per assigned partition.

    gauges = LagGauges(consumer, checkpoint, group, end_offsets, health)
    gauges.applied(("crm.public.customers", 0), source_ts_seconds)   # after each batch
    gauges.start(every_s=5.0)    # refreshed from their own thread
    gauges.stop()                # before the consumer closes

Records behind = the partition's end offset minus the committed offset (the checkpoint's: what this
process committed, or what the group had committed when the partition was assigned; never committed:
from the low watermark). Seconds behind, while
records wait = time since the newer of the last applied change's source time and the last moment
the partition was seen caught up; 0 when caught up. The second bound keeps a partition that was idle
for an hour from reporting an hour of lag the moment one record waits.

The gauges are refreshed from their own thread, with end offsets asked of the broker (not the
consumer's cached watermarks, which stop moving once its fetch queue is full): a loop stuck in a
batch or an outage is exactly when they must keep moving, so they never wait for it. Each report
also tells ``Health`` how far behind the process is, for /readyz.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping

import structlog
from confluent_kafka import Consumer, KafkaException

from consumer.checkpoint import Checkpoint, Partition
from consumer.health import Health
from consumer.metrics import CONSUMER_LAG_OFFSETS, CONSUMER_LAG_SECONDS

__all__ = ["LagGauges", "Watermarks"]

log = structlog.get_logger(__name__)

# (low, high) watermark of each asked partition, in one batched question to the broker.
Watermarks = Callable[[Iterable[Partition]], Mapping[Partition, tuple[int, int]]]
# Not asked here: the group's committed offsets on the broker. The checkpoint learns them at
# assignment; asking the group coordinator from this thread with the admin client aborts the process
# inside librdkafka when the broker drops the connection mid-request (librdkafka issue #4605).


class LagGauges:
    def __init__(
        self,
        consumer: Consumer,
        checkpoint: Checkpoint,
        watermarks: Watermarks,
        health: Health,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._consumer = consumer
        self._checkpoint = checkpoint
        self._watermarks = watermarks
        self._health = health
        self._clock = clock
        self._last_source_ts: dict[Partition, float] = {}
        self._caught_up_at: dict[Partition, float] = {}
        self._first_seen: dict[Partition, float] = {}
        self._reported: set[Partition] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def applied(self, partition: Partition, source_ts_seconds: float) -> None:
        self._last_source_ts[partition] = source_ts_seconds

    # -- the refreshing thread --------------------------------------------------------------------

    def start(self, every_s: float) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.report()
                except Exception as exc:  # a gauge refresh must never take the process down
                    log.warning("lag_report_failed", error=str(exc))
                self._stop.wait(every_s)

        self._thread = threading.Thread(target=run, name="scv-lag-gauges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- one report -------------------------------------------------------------------------------

    def report(self) -> None:
        try:
            assignment = [(tp.topic, tp.partition) for tp in self._consumer.assignment()]
        except (KafkaException, RuntimeError):
            return  # the consumer is closing
        marks = self._watermarks(assignment) if assignment else {}
        committed = {p: self._checkpoint.committed(p) for p in assignment}
        now = self._clock()
        worst = 0.0
        for partition in assignment:
            self._first_seen.setdefault(partition, now)
            if partition not in marks:
                continue
            low, high = marks[partition]
            # Never committed: the replicator starts from the earliest offset (auto.offset.reset).
            position = committed[partition]
            lag = max(0, high - (low if position is None else position))
            seconds = self._seconds_behind(partition, lag, now)
            worst = max(worst, seconds)
            topic, number = partition
            CONSUMER_LAG_OFFSETS.labels(topic, str(number)).set(lag)
            CONSUMER_LAG_SECONDS.labels(topic, str(number)).set(seconds)
        # Partitions revoked since the last report: their series would freeze at a stale value.
        for topic, number in self._reported - set(assignment):
            for gauge in (CONSUMER_LAG_OFFSETS, CONSUMER_LAG_SECONDS):
                with contextlib.suppress(KeyError):
                    gauge.remove(topic, str(number))
            self._first_seen.pop((topic, number), None)
            self._caught_up_at.pop((topic, number), None)
        self._reported = set(assignment) & set(marks)
        self._health.lag_reported(len(assignment), worst)

    def _seconds_behind(self, partition: Partition, lag: int, now: float) -> float:
        if not lag:
            self._caught_up_at[partition] = now
            return 0.0
        # Records waited at least since then; before anything was applied or seen caught up, since
        # the partition was assigned (a lower bound that still grows while the loop is stuck).
        known = [t for t in (self._last_source_ts.get(partition), self._caught_up_at.get(partition)) if t]
        since = max(known) if known else self._first_seen.get(partition, now)
        return max(0.0, now - since)
