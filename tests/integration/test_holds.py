"""Poison storms stop a source instead of draining it into the dead-letter topic; offset gaps stop a
partition instead of jumping silently. Each test runs its own replicator, keyspace and dead-letter
topic against a real source (consumer/holds.py is what they exercise)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from cassandra.cluster import Session
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.operate import resnapshot_source
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin
from tests.integration.conftest import (
    REPO,
    Isolated,
    ReaderFactory,
    SourceDatabase,
    attributes,
    metric,
    start_replicator,
    view_of,
    wait_for,
    wait_metrics_up,
)
from tests.integration.support import (
    AvroTopicReader,
    register_members,
    start_at_end,
    topic_with_records,
)

THRESHOLD = 5


def _scv(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scv", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def _parked(settings: Settings, topic: str) -> int:
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        return kafka.end_offsets([topic])[topic]


def _partition_of_member(settings: Settings, members: SourceDatabase, topic: str, member: int) -> int:
    """The partition Debezium puts the changes of ``member`` in (inserted and deleted again here)."""
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        before = kafka.watermarks([topic])
        members.execute("INSERT INTO members VALUES (%s, 0, 'probe')", (member,))
        members.execute("DELETE FROM members WHERE member_id = %s", (member,))

        def grown() -> list[int]:
            # The insert, the delete and its tombstone: three records in the member's partition.
            marks = kafka.watermarks([topic])
            return [key[1] for key, (_low, high) in marks.items() if high >= before[key][1] + 3]

        found = wait_for(grown, what="the probe's changes in Kafka")
    assert len(found) == 1, found
    return found[0]


def test_a_poison_storm_pauses_its_source_until_resumed(
    members: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated: Isolated,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    register_members(store_session, isolated.keyspace, members.name, "customer_id")
    topic = topic_with_records(stack, members)
    cid, member = random.randint(10**9, 10**12), random.randint(10**9, 10**12)
    # The storm must come before the valid change in its partition: records are applied in order
    # within a partition only (with the poison in partition 0 and the change elsewhere, the fetch
    # sometimes handed the change over first and it was applied). Its key decides the partition, so a
    # first insert and delete of the same member show which one.
    partition = _partition_of_member(stack, members, topic, member)
    start_at_end(stack, isolated.group, [topic])
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    for _ in range(THRESHOLD + 3):
        producer.produce(topic, key=b"k", value=b"garbage " + uuid.uuid4().bytes, partition=partition)
    producer.flush(10)
    members.execute("INSERT INTO members VALUES (%s, %s, 'held back')", (member, cid))

    env = isolated.env(SCV_CONSUMER__POISON_STORM_DEAD_LETTERS=str(THRESHOLD))
    worker = start_replicator(tmp_path, 9461, isolated.group, env)
    paused = f'scv_source_paused{{reason="poison_storm",source="{members.name}"}}'
    view = reader_for(isolated.keyspace)
    try:
        wait_metrics_up(worker.metrics_port)
        wait_for(lambda: metric(worker.metrics_port, paused) == 1, what="the source paused")
        # Parked up to the threshold, not the whole storm; the valid change waits with the rest.
        assert _parked(stack, isolated.dead_letter_topic) == THRESHOLD
        assert "source_paused" in worker.log_path.read_text()
        status = _scv(env, "sources", "status", members.name)
        assert status.returncode == 1
        assert "consumption paused (poison_storm" in status.stdout
        assert f"scv sources resume {members.name}" in " ".join(status.stderr.split())
        assert view_of(view, str(cid)) is None

        resumed = _scv(env, "sources", "resume", members.name)
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: attributes(view_of(view, str(cid)), "member"), what="the held-back change applied")
        assert metric(worker.metrics_port, paused) == 0
        assert _parked(stack, isolated.dead_letter_topic) == THRESHOLD + 3
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_records_deleted_by_retention_before_they_were_consumed_stop_their_partition(
    members: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated: Isolated,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    register_members(store_session, isolated.keyspace, members.name, "customer_id")
    topic = topic_with_records(stack, members)
    start_at_end(stack, isolated.group, [topic])
    cid = random.randint(10**9, 10**12)
    ids = [random.randint(10**9, 10**12) for _ in range(24)]
    with psycopg.connect(members.dsn) as conn, conn.transaction():
        for member in ids:
            conn.execute("INSERT INTO members VALUES (%s, %s, 'before the gap')", (member, cid))
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        wait_for(lambda: kafka.group_lag(isolated.group, [topic]) >= len(ids), what="the changes in Kafka")
        committed = kafka.committed(isolated.group, [topic])
        marks = kafka.watermarks([topic])
    # The partition with the most unconsumed changes loses them to "retention" (deleted by hand).
    partition = max(marks, key=lambda key: marks[key][1] - (committed[key] or 0))[1]
    low, high = committed[(topic, partition)] or 0, marks[(topic, partition)][1]
    assert high - low >= 1
    lost = _members_in(stack, topic, partition, low, high)
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})
    end = TopicPartition(topic, partition, high)
    admin.delete_records([end])[end].result(10)

    env = isolated.env()
    worker = start_replicator(tmp_path, 9462, isolated.group, env)
    stopped = f'scv_partition_stopped{{partition="{partition}",reason="offset_gap",topic="{topic}"}}'
    view = reader_for(isolated.keyspace)
    try:
        wait_metrics_up(worker.metrics_port)
        wait_for(lambda: metric(worker.metrics_port, stopped) == 1, what="the partition stopped")
        assert metric(worker.metrics_port, f'scv_offset_gaps_total{{topic="{topic}"}}') == 1
        log = worker.log_path.read_text()
        assert "partition_stopped" in log
        assert f"scv sources resnapshot {members.name}" in log
        # The other partitions go on; the lost changes are not silently skipped.
        wait_for(
            lambda: set(attributes(view_of(view, str(cid)), "member")) == {str(i) for i in ids} - lost,
            what="the changes of the other partitions",
        )
        status = _scv(env, "sources", "status", members.name)
        assert status.returncode == 1
        assert f"{topic}[{partition}] (offset_gap" in status.stdout

        own_store = stack.store.model_copy(update={"keyspace": isolated.keyspace})
        resnapshot_source(members.name, stack.model_copy(update={"store": own_store}))
        wait_for(
            lambda: set(attributes(view_of(view, str(cid)), "member")) == {str(i) for i in ids},
            timeout_s=120,
            what="the lost changes restored by the resnapshot",
        )
        wait_for(lambda: metric(worker.metrics_port, stopped) == 0, what="the partition restarted")
    finally:
        assert worker.stop() == 0, worker.log_tail()


def _members_in(settings: Settings, topic: str, partition: int, start: int, end: int) -> set[str]:
    """The member ids of the changes at offsets [start, end) of one partition, read by key."""

    decoder = AvroTopicReader(settings)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"probe-{uuid.uuid4()}"}
    )
    found: set[str] = set()
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        while start < end:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            start = int(message.offset() or 0) + 1
            key = decoder.decode(message.key())
            if key is not None:
                found.add(str(key["member_id"]))
    finally:
        consumer.close()
    return found
