"""Dead letters are never lost, and operators can list, show, replay and purge them (`scv dlq`).

Each test runs its own replicator against its own dead-letter topic and keyspace, so what it parks
and applies is its own; the source database and the Debezium connector are real and shared by the
module.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from cassandra.cluster import Session
from confluent_kafka import Producer

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
    register_members,
    start_at_end,
    topic_with_records,
)


def _committed(settings: Settings, group: str, topic: str, partition: int) -> int | None:
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        return kafka.committed(group, [topic]).get((topic, partition))


def _scv(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scv", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=check,
    )


def test_a_dead_letter_delivery_that_fails_blocks_the_commit_until_it_succeeds(
    members: SourceDatabase, stack: Settings, store_session: Session, isolated: Isolated, tmp_path: Path
) -> None:
    # A compacted dead-letter topic refuses a record without a key: every delivery of this one fails
    # until an operator fixes the topic.
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        kafka.ensure_topic(
            isolated.dead_letter_topic,
            partitions=1,
            replication_factor=1,
            config={"cleanup.policy": "compact"},
        )
    register_members(store_session, isolated.keyspace, members.name, "customer_id")
    topic = topic_with_records(stack, members)
    start_at_end(stack, isolated.group, [topic])
    poison_offset = _committed(stack, isolated.group, topic, 0)
    assert poison_offset is not None
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    producer.produce(topic, key=None, value=b"not avro " + uuid.uuid4().bytes, partition=0)
    producer.flush(10)

    worker = start_replicator(tmp_path, 9451, isolated.group, isolated.env())
    try:
        wait_metrics_up(worker.metrics_port)
        wait_for(
            lambda: metric(worker.metrics_port, 'scv_errors_total{kind="dead_letter_unavailable"}') >= 2,
            what="dead-letter deliveries failing and retried",
        )
        # The record is neither applied nor parked: its offset must not be committed.
        assert _committed(stack, isolated.group, topic, 0) == poison_offset
        assert worker.process.poll() is None, worker.log_tail()

        with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
            kafka.set_topic_config(isolated.dead_letter_topic, {"cleanup.policy": "delete"})
        wait_for(
            lambda: _committed(stack, isolated.group, topic, 0) == poison_offset + 1,
            what="the record parked and its offset committed once the topic accepts it",
        )
        with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
            assert kafka.end_offsets([isolated.dead_letter_topic])[isolated.dead_letter_topic] >= 1
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_parked_records_are_listed_shown_replayed_after_the_fix_and_purged(
    members: SourceDatabase,
    stack: Settings,
    store_session: Session,
    isolated: Isolated,
    tmp_path: Path,
    reader_for: ReaderFactory,
) -> None:
    # A mapping whose customer key names a column the rows do not have: every change is parked.
    register_members(store_session, isolated.keyspace, members.name, "no_such_column")
    start_at_end(stack, isolated.group, [topic_with_records(stack, members)])
    worker = start_replicator(tmp_path, 9452, isolated.group, isolated.env())
    env = isolated.env()
    try:
        cid = random.randint(10**9, 10**12)
        ids = [cid + n for n in range(3)]
        for member in ids:
            members.execute("INSERT INTO members VALUES (%s, %s, 'parked first')", (member, cid))

        def listed() -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = json.loads(
                _scv(env, "dlq", "list", "--source", members.name, "--json").stdout
            )
            return records

        parked = wait_for(lambda: (r := listed()) and len(r) == 3 and r, what="three parked records")
        assert {(r["source"], r["table"], r["op"], r["reason"], r["status"]) for r in parked} == {
            (members.name, "public.members", "c", "unplaceable", "parked")
        }
        assert {json.loads(r["key"])["member_id"] for r in parked} == set(ids)
        assert all("no_such_column" in r["error"] and r["failed_at"] for r in parked)

        shown = json.loads(_scv(env, "dlq", "show", parked[0]["id"], "--json").stdout)
        assert shown["decoded_value"]["after"]["name"] == "parked first"
        assert shown["decode_error"] is None

        # The fix: the right mapping. Then the replay applies every parked change.
        register_members(store_session, isolated.keyspace, members.name, "customer_id")
        replayed = json.loads(_scv(env, "dlq", "replay", "--source", members.name, "--json").stdout)
        assert sorted(replayed["replayed"]) == sorted(r["id"] for r in parked)
        view = reader_for(isolated.keyspace)
        wait_for(
            lambda: set(attributes(view_of(view, str(cid)), "member")) == {str(i) for i in ids},
            what="the replayed changes applied",
        )
        assert {r["status"] for r in listed()} == {"replayed"}

        refused = _scv(env, "dlq", "purge", "--source", members.name, check=False)
        assert refused.returncode != 0  # no confirmation on a closed stdin
        assert len(listed()) == 3
        purged = json.loads(_scv(env, "dlq", "purge", "--source", members.name, "--yes", "--json").stdout)
        assert len(purged["purged"]) == 3
        assert listed() == []
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_dlq_commands_refuse_an_unknown_id_with_the_fix(isolated: Isolated) -> None:
    shown = _scv(isolated.env(), "dlq", "show", "0:999999", check=False)
    assert shown.returncode == 1
    assert "scv dlq list" in shown.stderr
    replay = _scv(isolated.env(), "dlq", "replay", check=False)
    assert replay.returncode == 1
    assert "--source NAME or --all" in replay.stderr
