"""Onboarding and truncate edge cases: a table added to a running source brings its existing rows, a
truncate applied before older inserts still waiting in other partitions wins over them, a removed
source leaves the view and the replicator's subscription."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from cassandra.cluster import Session
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from scv.contracts.registration import SourceMapping, TableMapping
from scv.kafka.admin import KafkaAdmin
from store.registrations import RegistrationStore
from tests.integration.conftest import (
    REPO,
    Isolated,
    ReaderFactory,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    attributes,
    start_replicator,
    view_of,
    wait_for,
    wait_metrics_up,
)
from tests.integration.support import AvroTopicReader

SCHEMA = """
CREATE TABLE public.orders (order_id text PRIMARY KEY, customer_id text NOT NULL, total numeric(10,2));
CREATE TABLE public.visits (visit_id text PRIMARY KEY, customer_id text NOT NULL, page text);
INSERT INTO public.visits SELECT 'v' || g, 'visitor-' || (g % 3), '/home' FROM generate_series(1, 12) g;
"""
ORDERS = "  public.orders: {kind: order, customer_key: customer_id}\n"
VISITS = "  public.visits: {kind: visit, customer_key: customer_id}\n"


@pytest.fixture(scope="module")
def shop(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    # visits exists with rows but is not captured yet.
    return source_database(SCHEMA, ORDERS)


def _scv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scv", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_adding_a_table_to_a_running_source_snapshots_its_existing_rows(
    shop: SourceDatabase, reader: CustomerViewClient, replicator: ReplicatorProcess, tmp_path: Path
) -> None:
    with_visits = shop.spec.model_dump(mode="json", exclude_defaults=True)
    spec_file = tmp_path / "shop.yaml"

    with_visits["tables"]["public.visits"] = {"kind": "visit", "customer_key": "customer_id"}
    spec_file.write_text(yaml.safe_dump(with_visits))
    added = _scv("sources", "add", str(spec_file))
    assert added.returncode == 0, added.stderr
    output = " ".join(added.stdout.split())
    assert f"updated {shop.name}" in output
    assert "public.visits: new table, 12 existing rows snapshotted incrementally" in output
    assert "public.orders: already captured" in output
    for visitor in ("visitor-0", "visitor-1", "visitor-2"):
        try:
            found = wait_for(
                lambda v=visitor: attributes(view_of(reader, v), "visit"), what=f"{visitor}'s visits"
            )
        except pytest.fail.Exception as exc:
            # The session's replicator applies every source: its log says whether it subscribed to
            # the new table's topic and was assigned its partitions.
            pytest.fail(f"{exc}\nshared replicator's log:\n{replicator.log_tail(80)}")
        assert len(found) == 4


def _register(store_session: Session, keyspace: str, source: str) -> None:
    table = TableMapping(source, "public.orders", "order", customer_key="customer_id")
    RegistrationStore(store_session, keyspace).put(
        source, SourceMapping.build(source, source, [table]).to_json()
    )


def _commit(settings: Settings, group: str, offsets: list[TopicPartition]) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def _truncate_record(
    settings: Settings, topic: str, marks: dict[tuple[str, int], tuple[int, int]]
) -> TopicPartition:
    reader = AvroTopicReader(settings)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"p-{uuid.uuid4()}"}
    )
    try:
        for (t, partition), (low, high) in marks.items():
            if high <= low:
                continue
            consumer.assign([TopicPartition(t, partition, low)])
            position = low
            while position < high:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                position = int(message.offset() or 0) + 1
                value = reader.decode(message.value())
                if value is not None and value.get("op") == "t":
                    return TopicPartition(t, partition, position - 1)
    finally:
        consumer.close()
    pytest.fail(f"no truncate record in {topic}")


def _drain(settings: Settings, tmp_path: Path, port: int, group: str, isolated: Isolated, topic: str) -> None:
    worker = start_replicator(tmp_path, port, group, isolated.env())
    try:
        # Up first: a group with nothing left to apply is caught up before the process has even
        # started, and a SIGTERM during its imports ends it with -15 instead of a drain.
        wait_metrics_up(port)
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            wait_for(lambda: kafka.group_lag(group, [topic]) == 0, what=f"group {group} caught up")
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_a_truncate_applied_before_older_inserts_of_other_partitions_wins_over_them(
    shop: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated: Isolated,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    _register(store_session, isolated.keyspace, shop.name)
    topic = f"{shop.name}.public.orders"
    customer = f"trunc-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(shop.dsn) as conn, conn.transaction():
        for n in range(30):
            conn.execute("INSERT INTO orders VALUES (%s, %s, 1.00)", (f"{customer}-{n}", customer))
    shop.execute("TRUNCATE orders")
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        wait_for(
            lambda: sum(h for (_t, _p), (_l, h) in kafka.watermarks([topic]).items()) >= 31, what="records"
        )
        marks = kafka.watermarks([topic])
    truncate = _truncate_record(stack, topic, marks)
    ends = {key: high for key, (_low, high) in marks.items()}

    # First a process that owns only the truncate's partition applies it...
    first, second = f"{isolated.group}-a", f"{isolated.group}-b"
    _commit(stack, first, [TopicPartition(t, p, ends[(t, p)]) for (t, p) in ends if p != truncate.partition])
    _drain(stack, tmp_path, 9481, first, isolated, topic)
    # ...then the inserts committed before the truncate, which waited in the other partitions.
    _commit(stack, second, [TopicPartition(topic, truncate.partition, ends[(topic, truncate.partition)])])
    _drain(stack, tmp_path, 9482, second, isolated, topic)

    view = reader_for(isolated.keyspace)
    assert attributes(view_of(view, customer), "order") == {}
    # A row inserted after the truncate is newer than it and lands.
    shop.execute("INSERT INTO orders VALUES (%s, %s, 2.00)", (f"{customer}-new", customer))
    _drain(stack, tmp_path, 9483, second, isolated, topic)
    assert set(attributes(view_of(view, customer), "order")) == {f"{customer}-new"}


def test_removing_a_source_with_purge_view_deletes_its_entities(
    source_database: SourceFactory, replicator: ReplicatorProcess, reader: CustomerViewClient, stack: Settings
) -> None:
    gone = source_database(SCHEMA, ORDERS)
    customer = f"purge-{uuid.uuid4().hex[:8]}"
    gone.execute("INSERT INTO orders VALUES ('o1', %s, 1.00), ('o2', %s, 2.00)", (customer, customer))
    wait_for(lambda: len(attributes(view_of(reader, customer), "order")) == 2, what="the source's orders")

    removed = _scv("sources", "remove", gone.name, "--yes", "--purge-view")
    assert removed.returncode == 0, removed.stderr
    assert "deleted 2 entities" in removed.stdout
    assert view_of(reader, customer) is None

    # The session replicator drops the removed source's topics.
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})

    def assigned_topics() -> set[str]:
        group = admin.describe_consumer_groups([replicator.group_id])[replicator.group_id].result(10)
        return {tp.topic for member in group.members for tp in member.assignment.topic_partitions}

    wait_for(lambda: f"{gone.name}.public.orders" not in assigned_topics(), what="the topic unassigned")


def test_a_replicator_whose_last_source_is_removed_leaves_its_topics(
    shop: SourceDatabase, stack: Settings, store_session: Session, isolated: Isolated, tmp_path: Path
) -> None:
    _register(store_session, isolated.keyspace, shop.name)
    worker = start_replicator(tmp_path, 9484, isolated.group, isolated.env())
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})

    def assigned() -> int:
        group = admin.describe_consumer_groups([isolated.group])[isolated.group].result(10)
        return sum(len(m.assignment.topic_partitions) for m in group.members)

    try:
        shop.execute("INSERT INTO orders VALUES (%s, 'someone', 1.00)", (f"last-{random.randint(0, 10**9)}",))
        wait_for(assigned, what="partitions assigned")
        RegistrationStore(store_session, isolated.keyspace).delete(shop.name)
        wait_for(lambda: assigned() == 0, what="every partition released")
        assert worker.process.poll() is None, worker.log_tail()
    finally:
        assert worker.stop() == 0, worker.log_tail()
