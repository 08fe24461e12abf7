"""Faults under load: each case injects one failure while the demo workload runs, then proves the view
equals its systems of record (`scv verify --all` over the three sources finds no drift)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import psycopg
from cassandra.cluster import Session
from confluent_kafka import Producer

from compose.native.stack import Stack
from compose.native.supervisor import stop
from connectors.spec import SourceSpec
from scv.config.settings import Settings
from tests.faults.conftest import Replicator, Workload, assert_no_drift
from tests.integration.conftest import wait_for


def _bounce(stack: Settings, service: str, down_s: float) -> None:
    """Stop one service of the local stack, leave it down a while, bring it back healthy."""
    runner = Stack(stack)
    assert stop(runner.paths, service), f"{service} was not running"
    time.sleep(down_s)
    statuses = runner.up()
    assert all(s.healthy for s in statuses), [s for s in statuses if not s.healthy]


def _replaced(replicator: Replicator, victim: int) -> bool:
    pids = replicator.worker_pids()
    return victim not in pids and len(pids) == 2


def _spec(specs: list[SourceSpec], source: str) -> SourceSpec:
    return next(s for s in specs if s.name.endswith(f"_{source}"))


def test_workers_killed_repeatedly_lose_nothing(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    rng = random.Random(7)
    for _ in range(4):
        pids = replicator.worker_pids()
        assert pids, replicator.log_tail()
        victim = rng.choice(pids)
        os.kill(victim, signal.SIGKILL)
        # The supervisor replaces it (with backoff); the next kill waits for the replacement.
        wait_for(
            lambda v=victim: _replaced(replicator, v),  # type: ignore[misc]
            timeout_s=60,
            what="the killed worker replaced",
        )
        time.sleep(rng.uniform(1.0, 4.0))
    assert workload.changes > 0
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_store_restart_under_load(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    _bounce(stack, "cassandra", down_s=5)
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_broker_restart_under_load(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    _bounce(stack, "kafka", down_s=5)
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_connect_restart_resumes_from_its_offsets(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    _bounce(stack, "connect", down_s=3)
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_postgres_restart_under_load(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    _bounce(stack, "postgres", down_s=3)
    wait_for(lambda: workload.interruptions > 0 or workload.changes > 0, what="the workload going on")
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_registry_unreachable_for_a_while(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    _bounce(stack, "registry", down_s=15)
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_a_burst_of_poison_records_is_parked_and_the_rest_flows(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    topic = _spec(demo_sources, "crm").names.topic("public.customer_emails")
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    for n in range(200):
        producer.produce(topic, key=f"junk-{n}".encode(), value=b"\x07 not avro at all")
    assert producer.flush(30) == 0
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_schema_change_under_load(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    crm = _spec(demo_sources, "crm")
    dsn = stack.postgres.dsn(crm.database.dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers ADD COLUMN IF NOT EXISTS nickname text")
        conn.execute("UPDATE customers SET nickname = 'n' || customer_id WHERE customer_id % 10 = 0")
    time.sleep(5)
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_one_hot_customer_with_ten_thousand_entities(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
) -> None:
    care = _spec(demo_sources, "care")
    with psycopg.connect(stack.postgres.dsn(care.database.dbname), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO interactions (fiscal_code, channel, direction, started_at, duration_s, subject, "
            "agent_id) SELECT (SELECT fiscal_code FROM callers WHERE caller_id = 1), 'phone', 'inbound', "
            "now(), 60, 'hot line ' || g, 'agent-001' FROM generate_series(1, 10500) g"
        )
    assert_no_drift(stack, store_session, replicator.group, demo_sources)


def test_a_source_added_and_removed_under_load(
    stack: Settings,
    store_session: Session,
    demo_sources: list[SourceSpec],
    replicator: Replicator,
    workload: Workload,
    extra_source: Callable[[], str],
) -> None:
    name = extra_source()
    assert_no_drift(stack, store_session, replicator.group, demo_sources)
    leftovers = store_session.execute(
        f"SELECT count(*) FROM {stack.store.keyspace}.source_registrations WHERE name = %s", (name,)
    ).one()
    assert leftovers is not None
    assert leftovers.count == 0
