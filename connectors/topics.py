"""The Kafka side of a source: its topics, how full they are, when they last received a record.

end_offsets(settings, ["crm.public.customers"])   # {'crm.public.customers': 1200}
last_record_time(settings, topics)                # aware datetime or None
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from scv.settings import Settings

__all__ = ["delete_topics", "end_offsets", "heartbeat_topic", "last_record_time", "list_topics"]

_TIMEOUT_S = 10.0


def heartbeat_topic(topic_prefix: str) -> str:
    # Debezium's default topic.heartbeat.prefix.
    return f"__debezium-heartbeat.{topic_prefix}"


def _consumer(settings: Settings) -> Consumer:
    # A throw-away group that never commits: reading watermarks must not create consumer state.
    return Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"scv-sources-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )


def list_topics(settings: Settings) -> list[str]:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    metadata = admin.list_topics(timeout=_TIMEOUT_S)
    return sorted(metadata.topics)


def _high_watermarks(consumer: Consumer, topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """partition -> high watermark for each existing topic (missing topics are absent)."""
    metadata = consumer.list_topics(timeout=_TIMEOUT_S)
    out: dict[str, dict[int, int]] = {}
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            continue
        highs = out.setdefault(topic, {})
        for partition in meta.partitions:
            try:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=_TIMEOUT_S, cached=False
                )
            except KafkaException:
                # A topic Connect has just created may have no leader yet: count it as empty, a
                # lower bound the next poll corrects.
                continue
            highs[partition] = max(high, 0)
    return out


def end_offsets(settings: Settings, topics: Iterable[str]) -> dict[str, int]:
    """Records ever written per topic (sum of high watermarks); 0 for a topic that does not exist."""
    topics = list(topics)
    consumer = _consumer(settings)
    try:
        highs = _high_watermarks(consumer, topics)
    finally:
        consumer.close()
    return {topic: sum(highs.get(topic, {}).values()) for topic in topics}


def last_record_time(settings: Settings, topics: Iterable[str]) -> datetime | None:
    """The newest record timestamp across ``topics`` (reads the last record of each partition)."""
    consumer = _consumer(settings)
    try:
        assignment = [
            TopicPartition(topic, partition, high - 1)
            for topic, highs in _high_watermarks(consumer, topics).items()
            for partition, high in highs.items()
            if high > 0
        ]
        if not assignment:
            return None
        consumer.assign(assignment)
        newest_ms = 0
        pending = len(assignment)
        deadline = datetime.now(UTC).timestamp() + _TIMEOUT_S
        while pending and datetime.now(UTC).timestamp() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            pending -= 1
            _kind, ts_ms = message.timestamp()
            newest_ms = max(newest_ms, ts_ms)
        return datetime.fromtimestamp(newest_ms / 1000, UTC) if newest_ms else None
    finally:
        consumer.close()


def delete_topics(settings: Settings, topics: list[str]) -> None:
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for future in admin.delete_topics(topics, operation_timeout=_TIMEOUT_S).values():
        future.result()
