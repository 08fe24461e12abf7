"""The push on the real stack: after applying a batch, the replicator announces each changed customer
on scv.view-changed (Avro, registered), once per batch, only once the view shows the change, and a
failed announcement holds the commit back until it succeeds, across a restart."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from scv.contracts.view_changed import ViewChanged, schema_text, subject_of
from scv.kafka.admin import KafkaAdmin
from tests.integration.conftest import (
    REPO,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    metric,
    start_replicator,
    view_of,
    wait_for,
    wait_metrics_up,
)

SCHEMA = """
CREATE TABLE public.people (person_id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.emails (email_id bigint PRIMARY KEY, person_id bigint NOT NULL, email text);
"""
TABLES = """\
  public.people: {kind: profile, customer_key: person_id}
  public.emails: {kind: email, customer_key: person_id}
"""


@pytest.fixture(scope="module")
def people(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    return source_database(SCHEMA, TABLES)


def new_id() -> int:
    return random.randint(10**9, 10**12)


class EventReader:
    """Reads one events topic from the offsets it had when created, keeping one customer's events."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._topic = topic
        self._consumer = Consumer(
            {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"t-{uuid.uuid4().hex[:8]}"}
        )
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            # The replicator creates the topic as it starts.
            partitions = wait_for(lambda: kafka.partitions([topic]).get(topic), what=f"topic {topic}")
        ends = [
            self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        ]
        self._consumer.assign(
            [TopicPartition(topic, p, end) for p, end in zip(partitions, ends, strict=True)]
        )
        self._decode = AvroDeserializer(SchemaRegistryClient({"url": settings.registry.url}))
        self.events: dict[str, list[ViewChanged]] = {}

    def poll(self, seconds: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = self._consumer.poll(remaining)
            if message is None or message.error() is not None:
                continue
            record = self._decode(message.value(), SerializationContext(self._topic, MessageField.VALUE))
            event = ViewChanged.from_record(record)
            assert message.key() == event.customer_id.encode()
            self.events.setdefault(event.customer_id, []).append(event)

    def of(self, customer_id: str) -> list[ViewChanged]:
        self.poll()
        return self.events.get(customer_id, [])

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def events(stack: Settings, people: SourceDatabase) -> Iterator[EventReader]:
    reader = EventReader(stack, stack.consumer.view_events_topic)
    yield reader
    reader.close()


def test_changes_are_announced_once_per_customer_and_batch_after_the_view_shows_them(
    people: SourceDatabase, events: EventReader, reader: CustomerViewClient
) -> None:
    person, other = new_id(), new_id()
    with psycopg.connect(people.dsn) as transaction:  # one source transaction, committed on exit
        transaction.execute("INSERT INTO people VALUES (%s, 'Ada'), (%s, 'Bob')", (person, other))
        transaction.execute(
            "INSERT INTO emails VALUES (%s, %s, 'a@x'), (%s, %s, 'b@x'), (%s, %s, 'c@x')",
            (new_id(), person, new_id(), person, new_id(), other),
        )
    customer = str(person)

    def announced_sections() -> set[str] | None:
        found = events.of(customer)
        for event in found:
            # Emitted after the writes were acknowledged: the view already shows what it names.
            view = view_of(reader, customer)
            assert view is not None
            assert set(event.sections) <= set(view.sections)
        sections = {section for event in found for section in event.sections}
        return sections if sections >= {"profile", "email"} else None

    wait_for(announced_sections, what="events naming profile and email")
    announced = events.of(customer)
    positions = [event.positions for event in announced]
    assert len(positions) == len(set(positions)), "two events for one customer from one batch"
    for event in announced:
        assert event.source_ts <= event.applied_ts
        assert event.positions
        assert all(p.topic.startswith(people.name) for p in event.positions)
    assert wait_for(lambda: events.of(str(other)), what="the other customer's event")


def test_the_event_schema_is_registered(stack: Settings, people: SourceDatabase, events: EventReader) -> None:
    registered = SchemaRegistryClient({"url": stack.registry.url}).get_latest_version(
        subject_of(stack.consumer.view_events_topic)
    )
    assert json.loads(registered.schema.schema_str)["fields"] == json.loads(schema_text())["fields"]


def test_scv_view_watch_prints_the_customers_events(
    people: SourceDatabase, events: EventReader, stack: Settings
) -> None:
    person = new_id()
    people.execute("INSERT INTO people VALUES (%s, 'Watched')", (person,))
    wait_for(lambda: events.of(str(person)), what="the event")
    command = ["view", "watch", str(person), "--since", "300", "--count", "1", "--json", "--timeout", "60"]
    out = subprocess.run(
        [sys.executable, "-m", "scv", *command],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout.splitlines()[0])
    assert printed["customer_id"] == str(person)
    assert printed["sections"] == ["profile"]


def _metric(port: int, name: str) -> float:
    # Fails the test when the endpoint does not answer (tests/integration/conftest.py says why).
    wait_metrics_up(port)
    return metric(port, name)


def _max_message_bytes(admin: AdminClient, topic: str, value: str) -> None:
    entry = ConfigEntry("max.message.bytes", value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    next(iter(admin.incremental_alter_configs([resource]).values())).result(30)


def test_a_failed_announcement_holds_the_commit_and_survives_a_restart(
    people: SourceDatabase, stack: Settings, reader: CustomerViewClient, tmp_path: Path
) -> None:
    # The events topic of this replicator refuses every record (max.message.bytes 16) until fixed.
    topic = f"scv-test-view-changed-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        kafka.ensure_topic(topic, partitions=1, replication_factor=1, config={"max.message.bytes": "16"})
    source_topics = [f"{people.name}.public.people", f"{people.name}.public.emails"]
    group = f"scv-test-events-{uuid.uuid4().hex[:6]}"
    # The group starts at the current end: only the change below is its to apply.
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        ends = {
            (t, p): Consumer(
                {"bootstrap.servers": stack.kafka.bootstrap_servers, "group.id": group}
            ).get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t, partitions in kafka.partitions(source_topics).items()
            for p in partitions
        }
    committer = Consumer({"bootstrap.servers": stack.kafka.bootstrap_servers, "group.id": group})
    committer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()], asynchronous=False)
    committer.close()
    env = {"SCV_CONSUMER__VIEW_EVENTS_TOPIC": topic, "SCV_CONSUMER__RETRY_MAX_S": "1"}

    def committed() -> dict[tuple[str, int], int | None]:
        with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
            return kafka.committed(group, source_topics)

    person = new_id()
    first = start_replicator(tmp_path, metrics_port=9438, group_id=group, extra_env=env)
    try:
        people.execute("INSERT INTO people VALUES (%s, 'Held back')", (person,))
        wait_for(lambda: view_of(reader, str(person)), what="the change applied to the view")
        wait_for(
            lambda: _metric(9438, 'scv_errors_total{kind="view_events_unavailable"}') >= 2,
            what="announcements retried",
        )
        assert committed() == ends, "offsets were committed although the event was not acknowledged"
    finally:
        assert first.stop() == 0, first.log_tail()  # SIGTERM mid-retry: the batch stays uncommitted
    assert committed() == ends

    _max_message_bytes(admin, topic, "1048588")
    announced = EventReader(stack, topic)
    # The reader starts at the topic's end, which is 0: nothing was ever accepted into it.
    second = start_replicator(tmp_path, metrics_port=9439, group_id=group, extra_env=env)
    try:
        found = wait_for(lambda: announced.of(str(person)), what="the event after the restart")
        assert found[0].sections == ("profile",)
        wait_for(lambda: committed() != ends, what="the commit after the event")
    finally:
        announced.close()
        assert second.stop() == 0, second.log_tail()
        with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
            kafka.delete_topics([topic])
