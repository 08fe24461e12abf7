"""Faults under load: each case injects one failure while the demo workload runs, proves the failure
really happened, then proves the view equals its systems of record (`scv verify --all` finds no
drift, tests/faults/conftest.py ``assert_no_drift``)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable

import psycopg
from cassandra.cluster import Session
from confluent_kafka import Producer

from compose.native.stack import Stack
from compose.native.supervisor import running_pid, stop
from connectors.connect import ConnectClient
from consumer.dlq import ParkedView
from scv.config.settings import Settings
from tests.faults.conftest import Replicator, Suite, Workload, assert_no_drift, phase, stack_up
from tests.integration.conftest import wait_for


def _healthy(stack: Settings, service: str) -> bool:
    return next(s for s in Stack(stack).status() if s.name == service).healthy


def _bounce(stack: Settings, service: str, down_s: float, workload: Workload, replicator: Replicator) -> int:
    """Stop one service of the local stack under load, leave it down ``down_s``, bring it back
    healthy as a new process; returns the changes the workload committed meanwhile."""
    runner = Stack(stack)
    crashes = replicator.crashes()
    before = running_pid(runner.paths, service)
    assert before is not None, f"{service} is not running (started by `scv stack up`)"
    changes = workload.changes
    with phase(f"stopping {service}"):
        assert stop(runner.paths, service), f"{service} was not stopped"
    assert not _healthy(stack, service), f"{service} still answers after being stopped"
    time.sleep(down_s)
    during = workload.changes - changes
    with phase(f"starting {service}"):
        stack_up(stack)
    after = running_pid(runner.paths, service)
    assert after is not None, f"{service} is not running after `up`"
    assert after != before, f"{service} was not restarted (still pid {before})"
    # An outage is waited out (retried), never a crash of the replicator's workers.
    assert replicator.crashes() == crashes, (
        f"workers crashed while {service} restarted:\n{replicator.log_tail()}"
    )
    return during


def _connectors_running(suite: Suite) -> bool:
    with ConnectClient(suite.settings.connect.url) as connect:
        for spec in suite.specs:
            status = connect.status(spec.names.connector)
            if status is None or not status.running:
                return False
    return True


def _parked_by_the_case(suite: Suite, workload: Workload) -> list[ParkedView]:
    return [p for p in suite.dead_letters() if p.id not in workload.parked_before]


def _assert_nothing_parked(suite: Suite, workload: Workload) -> None:
    parked = _parked_by_the_case(suite, workload)
    assert not parked, f"{len(parked)} records dead-lettered, e.g. {[p.summary() for p in parked[:3]]}"


class HolderChanges:
    """Accounts (with cards) moved to another customer in the core database, in a background thread:
    each move is applied in two steps (the account, then its cards), the window a kill can cut."""

    def __init__(self, suite: Suite) -> None:
        self._dsn = suite.settings.postgres.dsn(suite.spec("core").database.dbname)
        self._stop = threading.Event()
        self.moves = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="holder-changes", daemon=True)

    def __enter__(self) -> HolderChanges:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            self._move_accounts()
        except psycopg.Error as exc:
            self.error = exc

    def _move_accounts(self) -> None:
        rng = random.Random()
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            accounts = [r[0] for r in conn.execute("SELECT DISTINCT account_id FROM cards")]
            customers = [r[0] for r in conn.execute("SELECT DISTINCT customer_id FROM accounts")]
            while not self._stop.wait(0.1):
                conn.execute(
                    "UPDATE accounts SET customer_id = %s WHERE account_id = %s",
                    (rng.choice(customers), rng.choice(accounts)),
                )
                self.moves += 1


def test_workers_killed_repeatedly_at_random_points_lose_nothing(
    suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    with HolderChanges(suite) as holders:
        killed = _kill_workers(replicator, random.Random())
    assert holders.moves > 0, f"no account changed holder: {holders.error}"
    assert not set(killed) & set(replicator.worker_pids())
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)
    # The moves recorded their settling work, and it was done again (store/intents.py).
    assert "settle_intent_finished" in replicator.log.read_text(errors="replace")


def _kill_workers(replicator: Replicator, rng: random.Random) -> list[int]:
    """SIGKILL a worker four times at random moments, each time once its replacement runs."""
    killed = []
    for _ in range(4):
        time.sleep(rng.uniform(0.5, 4.0))  # a random point of the workers' batches
        pids = replicator.worker_pids()
        assert len(pids) == 2, replicator.log_tail()
        victim = rng.choice(pids)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        # The supervisor replaces it (with backoff); the next kill waits for the replacement.
        wait_for(
            lambda v=victim: v not in replicator.worker_pids() and len(replicator.worker_pids()) == 2,  # type: ignore[misc]
            timeout_s=60,
            what=f"killed worker {victim} replaced",
        )
    return killed


def test_store_restart_under_load_loses_nothing(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    during = _bounce(stack, "cassandra", replicator=replicator, down_s=10, workload=workload)
    assert during > 0, "no change was made while the store was down"
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)


def test_broker_restart_under_load_loses_nothing(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    during = _bounce(stack, "kafka", replicator=replicator, down_s=10, workload=workload)
    assert during > 0, "no change was made while the broker was down"
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)


def test_connect_restart_resumes_debezium_from_its_offsets(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    during = _bounce(stack, "connect", replicator=replicator, down_s=5, workload=workload)
    assert during > 0, "no change was made while Kafka Connect was down"
    wait_for(lambda: _connectors_running(suite), timeout_s=120, what="the demo connectors running again")
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)


def test_postgres_restart_under_load_loses_nothing(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    _bounce(stack, "postgres", replicator=replicator, down_s=5, workload=workload)
    # The workload's sessions failed with the server and it carried on with new ones.
    wait_for(lambda: workload.interruptions > 0, timeout_s=30, what="the workload to notice the restart")
    changes = workload.changes
    wait_for(
        lambda: workload.changes > changes, timeout_s=60, what="the workload's changes after the restart"
    )
    wait_for(lambda: _connectors_running(suite), timeout_s=120, what="the demo connectors running again")
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)


def test_registry_unreachable_for_a_while_loses_nothing(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    runner = Stack(stack)
    assert stop(runner.paths, "registry"), "the registry was not running"
    try:
        assert not _healthy(stack, "registry")
        # Fresh workers have no schema cached: every record they read needs the registry.
        crashes = replicator.crashes()
        for pid in replicator.worker_pids():
            os.kill(pid, signal.SIGKILL)
        changes = workload.changes
        time.sleep(15)
        assert workload.changes > changes, "no change was made while the registry was down"
        assert len(replicator.worker_pids()) == 2, replicator.log_tail()
        # Only the two kills: workers starting without the registry wait for it, they do not crash.
        assert replicator.crashes() == crashes + 2, replicator.log_tail()
    finally:
        stack_up(stack)
    assert_no_drift(suite, workload, replicator)
    # An outage is retried, never parked as if the records were bad.
    _assert_nothing_parked(suite, workload)


def test_a_burst_of_poison_records_is_parked_and_the_rest_flows(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    topic = suite.spec("crm").names.topic("public.customer_emails")
    junk = b"\x07 not avro at all"
    # Below the poison-storm guard's threshold (consumer/poison_storm.py): parked one by one while the
    # source keeps flowing, not a paused source.
    burst = suite.settings.consumer.poison_storm_dead_letters // 2
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    for n in range(burst):
        producer.produce(topic, key=f"junk-{n}".encode(), value=junk)
    assert producer.flush(30) == 0
    assert_no_drift(suite, workload, replicator)
    parked = wait_for(lambda: _parked_by_the_case(suite, workload) or None)
    assert len(parked) == burst, [p.summary() for p in parked[:5]]
    assert {p.topic for p in parked} == {topic}
    assert {p.value for p in parked} == {junk}, "a parked record lost its original bytes"
    assert sorted(p.key or b"" for p in parked) == sorted(f"junk-{n}".encode() for n in range(burst))


def test_schema_change_under_load_loses_nothing(
    stack: Settings, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    crm = suite.spec("crm")
    with psycopg.connect(stack.postgres.dsn(crm.database.dbname), autocommit=True) as conn:
        # A DBA's migration while the workload writes: a new column, backfilled in batches.
        conn.execute("ALTER TABLE customers ADD COLUMN nickname text")
        for low in range(0, 400, 100):
            conn.execute(
                "UPDATE customers SET nickname = 'n' || customer_id "
                "WHERE customer_id > %s AND customer_id <= %s",
                (low, low + 100),
            )
            time.sleep(0.5)
        # Customers the workload onboarded meanwhile (ids above the seed's).
        conn.execute("UPDATE customers SET nickname = 'n' || customer_id WHERE nickname IS NULL")
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)


def test_one_hot_customer_with_ten_thousand_entities(
    stack: Settings, store_session: Session, suite: Suite, replicator: Replicator, workload: Workload
) -> None:
    crm, care = suite.spec("crm"), suite.spec("care")
    with psycopg.connect(stack.postgres.dsn(crm.database.dbname), autocommit=True) as conn:
        # A customer of the CRM: care's interactions reach it through its fiscal code.
        row = conn.execute(
            "SELECT fiscal_code FROM customers WHERE merged_into IS NULL ORDER BY customer_id LIMIT 1"
        ).fetchone()
        assert row is not None
    with psycopg.connect(stack.postgres.dsn(care.database.dbname), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO interactions (fiscal_code, channel, direction, started_at, duration_s, subject, "
            "agent_id) SELECT %s, 'phone', 'inbound', now(), 60, 'hot line ' || g, 'agent-001' "
            "FROM generate_series(1, 10500) g",
            (row[0],),
        )
    assert_no_drift(suite, workload, replicator)
    _assert_nothing_parked(suite, workload)
    biggest = max(
        r.count
        for r in store_session.execute(
            f"SELECT customer_id, count(*) AS count FROM {suite.settings.store.keyspace}.customer_view "
            "GROUP BY customer_id",
            timeout=120,
        )
    )
    assert biggest > 10_000, f"no customer holds 10,000 entities (the largest holds {biggest})"


def test_a_source_added_and_removed_under_load(
    store_session: Session,
    suite: Suite,
    replicator: Replicator,
    workload: Workload,
    extra_source: Callable[[], str],
) -> None:
    name = extra_source()
    # `verify --all` also reports rows of sources no longer registered: none are left.
    assert_no_drift(suite, workload, replicator)
    leftovers = store_session.execute(
        f"SELECT count(*) FROM {suite.settings.store.keyspace}.source_registrations WHERE name = %s", (name,)
    ).one()
    assert leftovers is not None
    assert leftovers.count == 0
    _assert_nothing_parked(suite, workload)
