"""A waiting room the store can no longer scan does not stop the pipeline.

A large backfill parks every child row whose parent comes later (cards consumed before their
accounts) and places it when the parent arrives: each leaves a tombstone in parked_entities until
the store compacts it away. Past Cassandra's tombstone_failure_threshold (100,000) the periodic
settling scan of that table fails every time; retried in the loop like a batch, it held up every
change of every source. Here the tombstones are written directly (what a backfill of 101,000
children leaves), and the replicator must go on applying while it reports the failed rounds.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from scv.contracts.registration import SourceMapping, TableMapping
from store.index import EntityIndex
from store.registrations import RegistrationStore
from tests.integration.conftest import (
    Isolated,
    ReaderFactory,
    SourceDatabase,
    SourceFactory,
    attributes,
    metric,
    start_replicator,
    view_of,
    wait_for,
    wait_metrics_up,
)

SCHEMA = """
CREATE TABLE public.accounts (account_id text PRIMARY KEY, customer_id text NOT NULL);
CREATE TABLE public.cards (card_id text PRIMARY KEY, account_id text NOT NULL);
"""
TABLES = (
    "  public.accounts: {kind: account, customer_key: customer_id}\n"
    "  public.cards: {kind: card, customer_key: {via: public.accounts, column: account_id}}\n"
)
TOMBSTONES = 101_000  # over Cassandra's default tombstone_failure_threshold (100,000)


def _bury_the_waiting_room(session: Session, keyspace: str, source: str) -> None:
    delete = session.prepare(
        f"DELETE FROM {keyspace}.parked_entities USING TIMESTAMP 1 WHERE source = ? "
        "AND table_name = 'public.cards' AND entity_id = ?"
    )
    batches = []
    for start in range(0, TOMBSTONES, 100):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for n in range(start, start + 100):
            batch.add(delete, (source, f"placed-{n:07d}"))
        batches.append((batch, None))
    for ok, result in execute_concurrent(session, batches, concurrency=16, raise_on_first_error=False):
        assert ok, result


def test_a_waiting_room_the_store_cannot_scan_does_not_hold_up_the_changes(
    source_database: SourceFactory,
    store_session: Session,
    isolated: Isolated,
    reader_for: ReaderFactory,
    tmp_path: Path,
) -> None:
    bank: SourceDatabase = source_database(SCHEMA, TABLES)
    accounts = TableMapping(bank.name, "public.accounts", "account", customer_key="customer_id")
    cards = TableMapping(
        bank.name, "public.cards", "card", via_table="public.accounts", via_column="account_id"
    )
    RegistrationStore(store_session, isolated.keyspace).put(
        bank.name, SourceMapping.build(bank.name, bank.name, [accounts, cards]).to_json()
    )
    _bury_the_waiting_room(store_session, isolated.keyspace, bank.name)

    port = 9486
    worker = start_replicator(tmp_path, port, isolated.group, isolated.env(SCV_CONSUMER__PARKED_SETTLE_S="1"))
    view = reader_for(isolated.keyspace)
    try:
        wait_metrics_up(port)
        # The settling round fails on the store every period (1 s here), and is counted each time.
        wait_for(
            lambda: metric(port, 'scv_errors_total{kind="parked_settle"}') >= 2,
            what="two failed settling rounds",
        )
        for round_ in range(3):
            customer = f"buried-{uuid.uuid4().hex[:8]}"
            with psycopg.connect(bank.dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO accounts VALUES (%s, %s)", (f"a-{customer}", customer))
                conn.execute("INSERT INTO cards VALUES (%s, %s)", (f"c-{customer}", f"a-{customer}"))
            wait_for(
                lambda c=customer: attributes(view_of(view, c), "card"),  # type: ignore[misc]
                what=f"round {round_}: the card applied while the settling scan fails",
            )
        # Meanwhile the rounds kept failing, each counted and none retried in the loop.
        assert "parked_settle_failed" in worker.log_tail(400)
        assert "READ_TOO_MANY_TOMBSTONES" in worker.log_path.read_text()
        assert worker.process.poll() is None, worker.log_tail()
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_the_waiting_rooms_of_every_table_are_scanned_in_one_round_and_purged_within_the_hour(
    store_session: Session, isolated: Isolated
) -> None:
    """The settling round's scan (consumer/applier.py ``settle_parked``): each table's listing, up to
    the limit, from one concurrent round; and the listing's tombstones kept an hour, not ten days
    (migration 0005), so a backfill's stop being scanned once compaction purges them."""
    ks = isolated.keyspace
    park = store_session.prepare(
        f"INSERT INTO {ks}.parked_entities (source, table_name, entity_id) VALUES (?, ?, ?)"
    )
    for n in range(5):
        store_session.execute(park, ("core", "public.cards", f"c{n}"))
    store_session.execute(park, ("care", "public.interactions", "i1"))

    found = EntityIndex(store_session, ks).parked_many(
        [("core", "public.cards"), ("care", "public.interactions"), ("core", "public.order_returns")], limit=3
    )

    assert found == {
        ("core", "public.cards"): ["c0", "c1", "c2"],
        ("care", "public.interactions"): ["i1"],
        ("core", "public.order_returns"): [],
    }
    grace = store_session.execute(
        "SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (ks, "parked_entities"),
    ).one()
    assert grace.gc_grace_seconds == 3600
