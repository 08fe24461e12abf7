"""The replicator's own lag gauges: records and seconds behind, per assigned partition.

    gauges = LagGauges(consumer, checkpoint)
    gauges.applied(("crm.public.customers", 0), source_ts_seconds)   # after each batch
    gauges.report()                                                 # every few seconds

Records behind = the partition's high watermark minus the acknowledged commit; seconds behind = the
age of the newest source change applied from it while records wait (0 when caught up).
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException

from consumer.checkpoint import Checkpoint, Partition
from consumer.metrics import CONSUMER_LAG_OFFSETS, CONSUMER_LAG_SECONDS

__all__ = ["LagGauges"]


class LagGauges:
    def __init__(self, consumer: Consumer, checkpoint: Checkpoint) -> None:
        self._consumer = consumer
        self._checkpoint = checkpoint
        self._last_source_ts: dict[Partition, float] = {}

    def applied(self, partition: Partition, source_ts_seconds: float) -> None:
        self._last_source_ts[partition] = source_ts_seconds

    def report(self) -> None:
        try:
            assignment = self._consumer.assignment()
        except KafkaException:
            return
        now = time.time()
        for tp in assignment:
            try:
                # Cached: the high watermark arrives with every fetch response, so this costs no broker
                # round trip (a synchronous query per partition would stall the loop for seconds).
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            partition = (tp.topic, tp.partition)
            committed = self._checkpoint.committed(partition)
            if committed is None or high < 0:
                continue
            lag = max(0, high - committed)
            CONSUMER_LAG_OFFSETS.labels(tp.topic, str(tp.partition)).set(lag)
            last = self._last_source_ts.get(partition)
            CONSUMER_LAG_SECONDS.labels(tp.topic, str(tp.partition)).set(
                max(0.0, now - last) if lag and last else 0.0
            )
