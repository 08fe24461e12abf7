"""Helpers shared by the integration tests that run their own replicators against a members table:
where a group starts, what a topic holds, which registration a test keyspace carries.

    start_at_end(settings, group, topics)                 # the group sees only changes made from now
    AvroTopicReader(settings).values(topic)                # every decoded value up to the end
    register_members(session, keyspace, source, "customer_id")
    topic_with_records(settings, members)                  # the members topic, with a first change
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
import uuid
from typing import Any

import fastavro
import httpx
from cassandra.cluster import Session
from confluent_kafka import Consumer, TopicPartition

from scv.config.settings import Settings
from scv.contracts.registration import SourceMapping, TableMapping
from scv.kafka.admin import KafkaAdmin
from store.registrations import RegistrationStore
from tests.integration.conftest import SourceDatabase, wait_for


def group_ends(settings: Settings, group: str, topics: list[str]) -> tuple[list[Any], list[Any]]:
    """(committed offsets of ``group``, end offsets) for every partition of ``topics``."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        # A topic Debezium has not created yet holds no records: nothing to skip or to wait for.
        present = [t for t in topics if t in metadata.topics]
        partitions = [TopicPartition(t, p) for t in present for p in metadata.topics[t].partitions]
        ends = [
            TopicPartition(tp.topic, tp.partition, consumer.get_watermark_offsets(tp, timeout=10)[1])
            for tp in partitions
        ]
        return consumer.committed(partitions, timeout=10), ends
    finally:
        consumer.close()


def committed_matches_end(settings: Settings, group: str, topics: list[str]) -> bool:
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        return kafka.group_lag(group, topics) == 0


def start_at_end(settings: Settings, group: str, topics: list[str]) -> None:
    """Commit the current end offsets for ``group``, so its replicator sees only new changes."""
    _committed, ends = group_ends(settings, group, topics)
    if not ends:
        return
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


class AvroTopicReader:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._schemas: dict[int, Any] = {}

    def _schema(self, schema_id: int) -> Any:
        if schema_id not in self._schemas:
            url = f"{self._settings.registry.url}/schemas/ids/{schema_id}"
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(response.json()["schema"]))
        return self._schemas[schema_id]

    def decode(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        magic, schema_id = struct.unpack(">bI", raw[:5])
        assert magic == 0, "not the Confluent wire format (magic byte 0 + 4-byte schema id)"
        record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(raw[5:]), self._schema(schema_id))  # type: ignore[call-arg]
        return record

    def values(self, topic: str) -> list[dict[str, Any]]:
        """Every decoded value of ``topic`` up to its current end (tombstones skipped)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self._settings.kafka.bootstrap_servers,
                "group.id": f"scv-test-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            ends = {}
            for partition in meta.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > 0:
                    ends[partition] = high
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            out: list[dict[str, Any]] = []
            positions = dict.fromkeys(ends, 0)
            deadline = time.monotonic() + 30
            while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                positions[message.partition()] = message.offset() + 1
                value = self.decode(message.value())
                if value is not None:
                    out.append(value)
            return out
        finally:
            consumer.close()


def register_members(store_session: Session, keyspace: str, source: str, customer_key: str) -> None:
    table = TableMapping(source, "public.members", "member", customer_key=customer_key)
    mapping = SourceMapping.build(source, source, [table])
    RegistrationStore(store_session, keyspace).put(source, mapping.to_json())


def topic_with_records(settings: Settings, members: SourceDatabase) -> str:
    """The members topic, created by a first change if it does not exist yet."""
    topic = f"{members.name}.public.members"
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        if kafka.end_offsets([topic])[topic] == 0:
            members.execute("INSERT INTO members VALUES (%s, 1, 'first')", (random.randint(10**9, 10**12),))
            wait_for(lambda: kafka.end_offsets([topic])[topic] > 0, what=f"topic {topic}")
    return topic
