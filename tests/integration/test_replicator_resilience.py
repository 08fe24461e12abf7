"""Nothing is lost: poison is parked with its original bytes, outages are retried, SIGTERM drains,
replays converge, and several processes share the work. Real Kafka, registry, store and PostgreSQL;
outages are real connection cuts made by a loopback proxy (tests/integration/faults.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from cassandra.cluster import Session
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from store.migrate import migrate
from store.registrations import RegistrationStore
from tests.integration.conftest import (
    REPO,
    ReaderFactory,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    attributes,
    metric,
    start_replicator,
    view_of,
    wait_for,
    wait_metrics_up,
)
from tests.integration.faults import FaultyProxy
from tests.integration.support import committed_matches_end, start_at_end

SCHEMA = """
CREATE TABLE public.members (member_id bigint PRIMARY KEY, customer_id bigint, name text);
CREATE TABLE public.rewards (reward_id bigint PRIMARY KEY, member_id bigint NOT NULL, points integer);
"""
TABLES = """\
  public.members: {kind: loyalty_member, customer_key: customer_id, null_customer_key: dead_letter}
  public.rewards: {kind: reward, customer_key: {via: public.members, column: member_id}}
"""


@pytest.fixture(scope="module")
def loyalty(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    return source_database(SCHEMA, TABLES)


def new_id() -> int:
    return random.randint(10**9, 10**12)


def dead_letters(
    settings: Settings,
    origin_topic: str,
    match: Callable[[Any], bool] = lambda _message: True,
    timeout_s: float = 60.0,
    expect: int = 1,
) -> list[Any]:
    """Dead-letter records whose origin is ``origin_topic`` and that ``match``, read from the start
    (own group) until ``expect`` of them are found or ``timeout_s`` passes."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"dlt-reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.consumer.dead_letter_topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(found) < expect:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = dict(message.headers() or [])
            if headers.get("scv.dlt.topic") == origin_topic.encode() and match(message):
                found.append(message)
    finally:
        consumer.close()
    return found


def _group_consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )


def test_a_source_registered_while_running_is_applied_without_restart(
    loyalty: SourceDatabase, reader: CustomerViewClient, replicator: ReplicatorProcess
) -> None:
    # The session replicator was started before this source existed (fixture order).
    cid, member = new_id(), new_id()
    loyalty.execute("INSERT INTO members VALUES (%s, %s, 'gold member')", (member, cid))
    loyalty.execute("INSERT INTO rewards VALUES (%s, %s, 120)", (member + 1, member))
    rewards = wait_for(lambda: attributes(view_of(reader, str(cid)), "reward"), what="via reward")
    assert rewards[str(member + 1)]["points"] == 120
    assert replicator.process.poll() is None


def test_undecodable_bytes_are_dead_lettered_with_original_bytes_and_consumption_continues(
    loyalty: SourceDatabase, stack: Settings, reader: CustomerViewClient
) -> None:
    topic = f"{loyalty.name}.public.members"
    payload = b"\x07 definitely not avro " + uuid.uuid4().bytes
    key = b"poison-key-" + uuid.uuid4().hex.encode()
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    producer.produce(topic, key=key, value=payload, headers=[("trace", b"t-1")])
    producer.flush(10)

    parked = dead_letters(stack, topic, lambda m: m.value() == payload)
    assert parked, "poison record not found in the dead-letter topic"
    record = parked[0]
    headers = dict(record.headers())
    assert record.key() == key
    assert headers["scv.dlt.reason"] == b"undecodable"
    assert headers["scv.dlt.partition"].isdigit()
    assert headers["scv.dlt.offset"].isdigit()
    assert b"magic byte" in headers["scv.dlt.error"]
    assert headers["trace"] == b"t-1"

    cid, member = new_id(), new_id()
    loyalty.execute("INSERT INTO members VALUES (%s, %s, 'after poison')", (member, cid))
    wait_for(lambda: attributes(view_of(reader, str(cid)), "loyalty_member"), what="change after poison")


def test_unknown_schema_id_is_dead_lettered(loyalty: SourceDatabase, stack: Settings) -> None:
    topic = f"{loyalty.name}.public.rewards"
    payload = b"\x00" + (2_000_000_000).to_bytes(4, "big") + uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    producer.produce(topic, key=None, value=payload)
    producer.flush(10)
    parked = dead_letters(stack, topic, lambda m: m.value() == payload)
    assert parked
    assert dict(parked[0].headers())["scv.dlt.reason"] == b"unknown_schema_id"


def test_row_the_mapping_cannot_place_is_dead_lettered(loyalty: SourceDatabase, stack: Settings) -> None:
    member = new_id()
    # members.customer_id is nullable and the spec parks such rows (null_customer_key: dead_letter).
    loyalty.execute("INSERT INTO members VALUES (%s, NULL, 'nobody')", (member,))
    topic = f"{loyalty.name}.public.members"
    parked = dead_letters(
        stack,
        topic,
        lambda m: (
            dict(m.headers())["scv.dlt.reason"] == b"unplaceable"
            and str(member).encode() in dict(m.headers())["scv.dlt.error"]
        ),
    )
    assert parked, "unplaceable record not found in the dead-letter topic"
    # The original Debezium bytes are kept: Confluent wire format, magic byte 0.
    assert parked[0].value()[0] == 0


def test_sigterm_drains_in_flight_work_and_commits(
    loyalty: SourceDatabase, stack: Settings, reader: CustomerViewClient, tmp_path: Path
) -> None:
    worker = start_replicator(tmp_path, metrics_port=9431)
    cid = new_id()
    rows = [(new_id(), cid) for _ in range(200)]
    with psycopg.connect(loyalty.dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO members VALUES (%s, %s, 'bulk')", rows)
    wait_for(lambda: len(attributes(view_of(reader, str(cid)), "loyalty_member")) == 200, what="bulk")
    topics = [f"{loyalty.name}.public.members", f"{loyalty.name}.public.rewards"]
    wait_for(
        lambda: committed_matches_end(stack, worker.group_id, topics),
        timeout_s=90,
        what="the SIGTERM test replicator to catch up",
    )
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0, worker.log_tail()
    assert "replicator_stopped" in worker.log_path.read_text()
    assert committed_matches_end(stack, worker.group_id, topics)


def test_replay_from_the_beginning_converges_to_the_same_view(
    loyalty: SourceDatabase, stack: Settings, reader: CustomerViewClient, tmp_path: Path
) -> None:
    cid, member = new_id(), new_id()
    loyalty.execute("INSERT INTO members VALUES (%s, %s, 'v1')", (member, cid))
    for version in range(2, 6):
        loyalty.execute("UPDATE members SET name = %s WHERE member_id = %s", (f"v{version}", member))
    wait_for(
        lambda: (
            attributes(view_of(reader, str(cid)), "loyalty_member").get(str(member), {}).get("name") == "v5"
        ),
        what="final version",
    )
    before = view_of(reader, str(cid))
    assert before is not None

    # A second consumer group re-applies every change of the topics from offset 0: at-least-once
    # redelivery in its most extreme form. Write timestamps make it a no-op for the view.
    replay = start_replicator(tmp_path, metrics_port=9432)
    try:
        topics = [f"{loyalty.name}.public.members", f"{loyalty.name}.public.rewards"]
        wait_for(
            lambda: committed_matches_end(stack, replay.group_id, topics),
            timeout_s=120,
            what="replay to finish",
        )
    finally:
        assert replay.stop() == 0, replay.log_tail()
    after = view_of(reader, str(cid))
    assert after is not None
    assert {e.id: (e.attributes, e.source_ts) for e in after.sections["loyalty_member"]} == {
        e.id: (e.attributes, e.source_ts) for e in before.sections["loyalty_member"]
    }


@pytest.fixture
def isolated_keyspace(stack: Settings, store_session: Session, loyalty: SourceDatabase) -> Iterator[str]:
    """A keyspace of its own (with the loyalty registration) so a faulty replicator's view is its own."""
    keyspace = f"scv_fault_{uuid.uuid4().hex[:8]}"
    migrate(store_session, keyspace, stack.store.replication_factor, stack.store.local_dc)
    source = RegistrationStore(store_session, stack.store.keyspace)
    target = RegistrationStore(store_session, keyspace)
    for registration in source.all():
        if registration.name == loyalty.name:
            target.put(registration.name, registration.mapping_json)
    yield keyspace
    store_session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


def _metric(port: int, name: str) -> float:
    # Fails the test when the endpoint does not answer (tests/integration/conftest.py says why).
    wait_metrics_up(port)
    return metric(port, name)


def test_registry_outage_is_retried_not_dead_lettered(
    loyalty: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated_keyspace: str,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    registry = urlsplit(stack.registry.url)
    proxy = FaultyProxy(registry.port or 80)
    proxy.start()
    proxy.cut()
    # Only changes made from now on: earlier tests parked poison records in these topics on purpose.
    group = f"scv-registry-outage-{uuid.uuid4().hex[:6]}"
    start_at_end(stack, group, [f"{loyalty.name}.public.members", f"{loyalty.name}.public.rewards"])
    loyalty.execute("ALTER TABLE members ADD COLUMN tier text")  # a schema id no process has cached
    cid, member = new_id(), new_id()
    loyalty.execute("INSERT INTO members VALUES (%s, %s, 'during registry outage', 'gold')", (member, cid))
    worker = start_replicator(
        tmp_path,
        metrics_port=9433,
        group_id=group,
        extra_env={
            "SCV_REGISTRY__URL": f"http://127.0.0.1:{proxy.port}{registry.path}",
            "SCV_STORE__KEYSPACE": isolated_keyspace,
        },
    )
    try:
        wait_for(
            lambda: _metric(9433, 'scv_errors_total{kind="registry_unavailable"}') >= 2,
            what="registry retries",
        )
        assert _metric(9433, "scv_events_dead_lettered_total") == 0
        proxy.restore()
        reader = reader_for(isolated_keyspace)
        wait_for(
            lambda: attributes(view_of(reader, str(cid)), "loyalty_member"),
            timeout_s=90,
            what="change applied after the registry came back",
        )
        assert _metric(9433, "scv_events_dead_lettered_total") == 0
    finally:
        assert worker.stop() == 0, worker.log_tail()
        proxy.cut()


def test_a_replicator_started_while_kafka_does_not_answer_waits_for_it(
    loyalty: SourceDatabase,
    stack: Settings,
    isolated_keyspace: str,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    # The broker restarting when a replicator (re)starts: its start-up questions to Kafka (the
    # dead-letter topic, the view events' topic) go unanswered. Before, that was a crash loop.
    host, port = stack.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    proxy = FaultyProxy(int(port), host)
    proxy.start()
    proxy.cut()
    group = f"scv-kafka-outage-{uuid.uuid4().hex[:6]}"
    start_at_end(stack, group, [f"{loyalty.name}.public.members", f"{loyalty.name}.public.rewards"])
    worker = start_replicator(
        tmp_path,
        metrics_port=9437,
        group_id=group,
        extra_env={
            # Only the first contact goes through the proxy: the broker then advertises itself.
            "SCV_KAFKA__BOOTSTRAP_SERVERS": f"{host}:{proxy.port}",
            "SCV_STORE__KEYSPACE": isolated_keyspace,
        },
    )
    try:
        wait_for(
            lambda: _metric(9437, 'scv_errors_total{kind="kafka_unavailable"}') >= 2,
            timeout_s=120,
            what="Kafka retried at start-up",
        )
        assert worker.process.poll() is None, worker.log_tail()
        proxy.restore()
        cid, member = new_id(), new_id()
        loyalty.execute("INSERT INTO members VALUES (%s, %s, 'after kafka came back')", (member, cid))
        reader = reader_for(isolated_keyspace)
        wait_for(
            lambda: attributes(view_of(reader, str(cid)), "loyalty_member"),
            timeout_s=120,
            what="change applied once Kafka answered",
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
        proxy.cut()


def _replicator_behind_store_proxy(
    stack: Settings,
    loyalty: SourceDatabase,
    keyspace: str,
    tmp_path: Path,
    metrics_port: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[FaultyProxy, ReplicatorProcess]:
    """A replicator of its own group (new changes only) that reaches the store through a proxy."""
    proxy = FaultyProxy(stack.store.port)
    proxy.start()
    group = f"scv-store-fault-{uuid.uuid4().hex[:6]}"
    start_at_end(stack, group, [f"{loyalty.name}.public.members", f"{loyalty.name}.public.rewards"])
    worker = start_replicator(
        tmp_path,
        metrics_port=metrics_port,
        group_id=group,
        extra_env={
            "SCV_STORE__PORT": str(proxy.port),
            "SCV_STORE__KEYSPACE": keyspace,
            "SCV_STORE__REQUEST_TIMEOUT_S": "2",
            **(extra_env or {}),
        },
    )
    return proxy, worker


def test_store_outage_is_retried_and_nothing_is_lost(
    loyalty: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated_keyspace: str,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    # Registration polls every 0.5 s meet the outage too: they must not park the loop where it
    # neither applies the batch (retrying its writes) nor drains on SIGTERM.
    proxy, worker = _replicator_behind_store_proxy(
        stack, loyalty, isolated_keyspace, tmp_path, 9434, {"SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5"}
    )
    reader = reader_for(isolated_keyspace)
    try:
        cid = new_id()
        first = new_id()
        loyalty.execute("INSERT INTO members VALUES (%s, %s, 'before outage')", (first, cid))
        wait_for(
            lambda: attributes(view_of(reader, str(cid)), "loyalty_member"),
            timeout_s=90,
            what="first change applied",
        )
        proxy.cut()
        members = [new_id() for _ in range(20)]
        for member in members:
            loyalty.execute("INSERT INTO members VALUES (%s, %s, 'during outage')", (member, cid))
        wait_for(
            lambda: _metric(9434, 'scv_errors_total{kind="store_unavailable"}') >= 1,
            timeout_s=60,
            what="store retries",
        )
        proxy.restore()
        wait_for(
            lambda: len(attributes(view_of(reader, str(cid)), "loyalty_member")) == 21,
            timeout_s=120,
            what="every change applied after the store came back",
        )
        assert _metric(9434, "scv_events_dead_lettered_total") == 0
    finally:
        assert worker.stop() == 0, worker.log_tail()
        proxy.cut()


def test_store_outage_while_idle_is_retried_not_fatal(
    loyalty: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated_keyspace: str,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    # An idle replicator still reads the store: it polls the source registrations every few seconds.
    # A driver error there once ended the process (found by restarting Cassandra under a replicator).
    proxy, worker = _replicator_behind_store_proxy(
        stack, loyalty, isolated_keyspace, tmp_path, 9436, {"SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5"}
    )
    reader = reader_for(isolated_keyspace)
    try:
        # Assigned and warmed up first: the outage must meet the idle loop, not the warm-up (which
        # reads the store too, and is retried as a store outage).
        wait_for(lambda: "index_cache_warmed" in worker.log_tail(200), timeout_s=60, what="replicator up")
        proxy.cut()
        wait_for(
            lambda: _metric(9436, 'scv_errors_total{kind="registrations_unavailable"}') >= 2,
            timeout_s=60,
            what="registration polls retried during the outage",
        )
        assert worker.process.poll() is None, worker.log_tail()
        proxy.restore()
        cid, member = new_id(), new_id()
        loyalty.execute("INSERT INTO members VALUES (%s, %s, 'after idle outage')", (member, cid))
        wait_for(
            lambda: attributes(view_of(reader, str(cid)), "loyalty_member"),
            timeout_s=120,
            what="a change after the outage applied",
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
        proxy.cut()


def test_several_processes_split_the_partitions(
    loyalty: SourceDatabase, stack: Settings, reader: CustomerViewClient, tmp_path: Path
) -> None:
    group = f"scv-multi-{uuid.uuid4().hex[:6]}"
    log_path = tmp_path / "multi.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": group,
        "SCV_CONSUMER__METRICS_PORT": "9440",
        "SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scv", "consume", "--processes", "2"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})

        def members_with_partitions() -> list[int]:
            described = admin.describe_consumer_groups([group])[group].result(10)
            return [len(m.assignment.topic_partitions) for m in described.members]

        counts = wait_for(
            lambda: (c := members_with_partitions()) and len(c) == 2 and all(c) and c,
            timeout_s=90,
            what="two members with partitions",
        )
        assert sum(counts) >= 2
        # Both processes export metrics on their own port.
        for port in (9440, 9441):
            assert "scv_events_consumed_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()[-3000:]


def test_resnapshot_repairs_rows_deleted_from_the_store_by_hand(
    loyalty: SourceDatabase, stack: Settings, store_session: Session, reader: CustomerViewClient
) -> None:
    from connectors.operate import resnapshot_source

    cid, member = new_id(), new_id()
    loyalty.execute(
        "INSERT INTO members (member_id, customer_id, name) VALUES (%s, %s, 'repair me')", (member, cid)
    )
    loyalty.execute("INSERT INTO rewards VALUES (%s, %s, 7)", (member + 1, member))
    wait_for(lambda: attributes(view_of(reader, str(cid)), "reward"), what="rows before the accident")

    # An operator deletes the customer's rows by hand (plain CQL: the write time is "now").
    store_session.execute(
        f"DELETE FROM {stack.store.keyspace}.customer_view WHERE customer_id = %s", (str(cid),)
    )
    assert view_of(reader, str(cid)) is None

    resnapshot_source(loyalty.name, stack)
    repaired = wait_for(
        lambda: (
            (v := view_of(reader, str(cid)))
            and attributes(v, "reward")
            and attributes(v, "loyalty_member")
            and v
        ),
        timeout_s=120,
        what="rows re-emitted by the incremental snapshot",
    )
    assert attributes(repaired, "loyalty_member")[str(member)]["name"] == "repair me"
    assert attributes(repaired, "reward")[str(member + 1)]["points"] == 7
