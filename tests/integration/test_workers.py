"""A crash or a stop never loses a change: a SIGKILLed worker of `scv consume --processes 2` comes back
and its uncommitted batch is applied; SIGTERM during a batch finishes it and commits only what is
applied. Real Kafka, store and PostgreSQL; each test has its own group and keyspace."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from cassandra.cluster import Session
from confluent_kafka import Consumer, TopicPartition

from scv.client import CustomerViewClient
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

ROWS = 3000


def _insert_many(members: SourceDatabase, cid: int) -> set[str]:
    first = random.randint(10**9, 10**12)
    members.execute(
        "INSERT INTO members SELECT g, %s, 'bulk' FROM generate_series(%s::bigint, %s::bigint) AS g",
        (cid, first, first + ROWS - 1),
    )
    return {str(first + n) for n in range(ROWS)}


def _applied(view: CustomerViewClient, cid: int) -> set[str]:
    return set(attributes(view_of(view, str(cid)), "member"))


def _start_supervisor(
    log_path: Path, isolated: Isolated, metrics_port: int, **extra_env: str
) -> subprocess.Popen[bytes]:
    """`scv consume --processes 2` on the test's own group and keyspace, logging JSON to ``log_path``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": isolated.group,
        "SCV_CONSUMER__METRICS_PORT": str(metrics_port),
        "SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5",
        "SCV_LOG_FORMAT": "json",
        **isolated.env(),
        **extra_env,
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "scv", "consume", "--processes", "2"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _supervisor_events(log_path: Path, event: str) -> list[dict[str, object]]:
    events = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            events.append(record)
    return events


def test_a_sigkilled_worker_comes_back_and_no_change_is_lost(
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
    log_path = tmp_path / "supervisor.log"
    supervisor = _start_supervisor(
        log_path, isolated, metrics_port=9470, SCV_CONSUMER__WORKER_RESTART_INITIAL_S="0.5"
    )
    view = reader_for(isolated.keyspace)
    try:
        for port in (9470, 9471):
            wait_metrics_up(port)
        started = wait_for(lambda: _supervisor_events(log_path, "worker_started"), what="workers started")
        victim = next(int(str(e["pid"])) for e in started if e["worker"] == 0)
        cid = random.randint(10**9, 10**12)
        wanted = _insert_many(members, cid)
        # Killed while the group works through the changes: some applied, some not yet committed.
        wait_for(lambda: _applied(view, cid), every_s=0.05, what="the first changes applied")
        os.kill(victim, signal.SIGKILL)

        wait_for(
            lambda: [e for e in _supervisor_events(log_path, "worker_started") if e["restarts"] == 1],
            what="the killed worker started again",
        )
        crashed = _supervisor_events(log_path, "worker_crashed")
        assert [(e["worker"], e["how"]) for e in crashed] == [(0, "signal SIGKILL")]
        wait_metrics_up(9470)
        wait_for(
            lambda: metric(9470, 'scv_worker_restarts_total{worker="0"}') == 1,
            what="the restart counted by the restarted worker",
        )
        wait_for(lambda: _applied(view, cid) == wanted, timeout_s=120, what=f"all {ROWS} changes applied")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    assert code == 0, log_path.read_text()[-3000:]


def _committed_changes(settings: Settings, group: str, topic: str, cid: int) -> tuple[int, set[str]]:
    """(records below the committed offsets, their member ids): every one must be in the view."""
    reader = AvroTopicReader(settings)
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        committed = kafka.committed(group, [topic])
        marks = kafka.watermarks([topic])
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"p-{uuid.uuid4()}"}
    )
    covered: set[str] = set()
    count = 0
    try:
        for (t, partition), offset in committed.items():
            low = marks[(t, partition)][0]
            if offset is None or offset <= low:
                continue
            consumer.assign([TopicPartition(t, partition, low)])
            position = low
            while position < offset:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                position = int(message.offset() or 0) + 1
                value = reader.decode(message.value())
                if value and value.get("after") and value["after"]["customer_id"] == cid:
                    covered.add(str(value["after"]["member_id"]))
                count += 1
    finally:
        consumer.close()
    return count, covered


def test_sigterm_during_a_batch_finishes_it_and_commits_only_what_is_applied(
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
    view = reader_for(isolated.keyspace)
    cid = random.randint(10**9, 10**12)
    wanted = _insert_many(members, cid)
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        wait_for(lambda: kafka.group_lag(isolated.group, [topic]) >= ROWS, what="the changes in Kafka")

    worker = start_replicator(tmp_path, 9472, isolated.group, isolated.env())
    wait_metrics_up(worker.metrics_port)
    wait_for(
        lambda: metric(worker.metrics_port, "scv_events_consumed_total") > 0,
        every_s=0.02,
        what="a batch in flight",
    )
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(60) == 0, worker.log_tail()
    assert "replicator_stopped" in worker.log_path.read_text()
    applied = _applied(view, cid)
    assert applied, "the batch in flight was not finished"
    count, covered = _committed_changes(stack, isolated.group, topic, cid)
    assert covered <= applied, f"{len(covered - applied)} committed changes are not in the view"
    assert count >= len(covered)

    # Whatever was not committed is applied by the next process of the group.
    after = start_replicator(tmp_path, 9473, isolated.group, isolated.env())
    try:
        wait_for(lambda: _applied(view, cid) == wanted, timeout_s=120, what="every change applied")
    finally:
        assert after.stop() == 0, after.log_tail()


def test_a_worker_whose_consumer_is_fenced_rejoins_and_no_change_is_lost(
    members: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated: Isolated,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    # Seen after a broker restart: the coordinator fenced both workers' static members, their
    # consumers failed for good ("fatal") and the workers went on without consuming, forever.
    register_members(store_session, isolated.keyspace, members.name, "customer_id")
    topic = topic_with_records(stack, members)
    start_at_end(stack, isolated.group, [topic])
    log_path = tmp_path / "supervisor.log"
    instance = f"fenced-{uuid.uuid4().hex[:6]}"
    supervisor = _start_supervisor(
        log_path, isolated, metrics_port=9474, SCV_CONSUMER__GROUP_INSTANCE_ID=instance
    )
    view = reader_for(isolated.keyspace)
    try:
        for port in (9474, 9475):
            wait_metrics_up(port)
        with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
            wait_for(
                lambda: [
                    g
                    for g in kafka.consumer_groups([isolated.group])
                    if g.state == "STABLE" and len(g.members) == 2
                ],
                timeout_s=60,
                what="both workers in the group",
            )
        # Another consumer joins as worker 0's static member: the coordinator fences worker 0.
        intruder = Consumer(
            {
                "bootstrap.servers": stack.kafka.bootstrap_servers,
                "group.id": isolated.group,
                "group.instance.id": f"{instance}-0",
                "partition.assignment.strategy": "cooperative-sticky",
                "enable.auto.commit": False,
            }
        )
        intruder.subscribe([topic])
        try:
            wait_for(
                lambda: intruder.poll(0.5) is not None or bool(intruder.assignment()),
                timeout_s=60,
                what="the intruder in the group",
            )
        finally:
            intruder.close()
        rejoined = wait_for(
            lambda: _supervisor_events(log_path, "worker_rejoining"), timeout_s=60, what="worker 0 rejoining"
        )
        assert [e["worker"] for e in rejoined] == [0]
        assert not _supervisor_events(log_path, "worker_crashed"), log_path.read_text()[-3000:]
        cid = random.randint(10**9, 10**12)
        wanted = _insert_many(members, cid)
        wait_for(lambda: _applied(view, cid) == wanted, timeout_s=120, what=f"all {ROWS} changes applied")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    assert code == 0, log_path.read_text()[-3000:]
