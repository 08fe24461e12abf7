"""How far a consumer group is behind a set of topics, as the broker sees it (committed offsets).

For tools that wait on a replicator from outside it (`scv demo run`): the replicator's own lag
gauges need its metrics endpoint, the broker's committed offsets need only the bootstrap servers.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

__all__ = ["committed_lag"]


def committed_lag(bootstrap_servers: str, group: str, topics: list[str], timeout_s: float = 10) -> int:
    """Records in ``topics`` that ``group`` has not committed yet (a missing topic holds none).

    A partition the group never committed counts from its low watermark: the replicator starts
    from the earliest offset.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]
        behind = 0
        for committed in consumer.committed(partitions, timeout=timeout_s):
            low, high = consumer.get_watermark_offsets(committed, timeout=timeout_s)
            behind += max(0, high - (committed.offset if committed.offset >= 0 else low))
        return behind
    finally:
        consumer.close()
