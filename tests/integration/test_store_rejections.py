"""A write the store always rejects is isolated and parked, never retried forever; batches are sized by
the bytes they carry. Real PostgreSQL, Debezium, Kafka and Cassandra."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from cassandra.cluster import Session

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from store.mutations import PutRow, RowKey
from store.writer import ViewWriter
from tests.integration.conftest import (
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    attributes,
    metric,
    view_of,
    wait_for,
)
from tests.integration.test_replicator_resilience import dead_letters

SCHEMA = "CREATE TABLE public.notes (note_id bigint PRIMARY KEY, customer_id text NOT NULL, body text);"
TABLES = "  public.notes: {kind: note, customer_key: customer_id}\n"


@pytest.fixture(scope="module")
def notes(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    return source_database(SCHEMA, TABLES)


def _note_ids(reader: CustomerViewClient, customer: str) -> set[str]:
    return set(attributes(view_of(reader, customer), "note"))


def test_changes_the_store_always_rejects_are_parked_and_the_rest_applied(
    notes: SourceDatabase, stack: Settings, reader: CustomerViewClient, replicator: ReplicatorProcess
) -> None:
    large_before = metric(replicator.metrics_port, 'scv_store_rejections_total{reason="key_too_large"}')
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    base = random.randint(10**9, 10**12)
    with psycopg.connect(notes.dsn) as conn, conn.transaction():
        conn.execute("INSERT INTO notes VALUES (%s, %s, 'first')", (base, customer))
        conn.execute("INSERT INTO notes VALUES (%s, '', 'empty customer key')", (base + 1,))
        conn.execute("INSERT INTO notes VALUES (%s, %s, 'huge customer key')", (base + 2, "k" * 70_000))
        conn.execute("INSERT INTO notes VALUES (%s, %s, 'last')", (base + 3, customer))
    wait_for(lambda: _note_ids(reader, customer) == {str(base), str(base + 3)}, what="the valid notes")

    topic = f"{notes.name}.public.notes"
    parked = dead_letters(stack, topic, expect=2)
    assert len(parked) == 2, f"the refused changes in the dead-letter topic: {len(parked)} of 2"
    reasons = {
        dict(m.headers())["scv.dlt.reason"]: dict(m.headers())["scv.dlt.error"].decode() for m in parked
    }
    # The store refuses the 70 KB key (checked before sending, so nothing of it is half written); an
    # empty key is refused earlier, by placement (a customer key that normalises to nothing).
    assert "Key length of 70000 is longer than maximum of 65535" in reasons[b"store_rejected"]
    assert "customer_id" in reasons[b"unplaceable"]
    assert (
        metric(replicator.metrics_port, 'scv_store_rejections_total{reason="key_too_large"}')
        == large_before + 1
    )

    # Nothing of the refused change was half written: fixing its key later applies like any change.
    notes.execute("UPDATE notes SET customer_id = %s WHERE note_id = %s", (customer, base + 2))
    wait_for(lambda: str(base + 2) in _note_ids(reader, customer), what="the fixed note")
    assert replicator.process.poll() is None, replicator.log_tail()


def test_rows_of_multi_byte_text_are_batched_by_their_bytes(
    notes: SourceDatabase, reader: CustomerViewClient
) -> None:
    # 10,000 characters of "€" are 30,000 bytes: counted as characters, two of these fit the 24 KiB
    # budget of a write request, and Cassandra refuses the 60 KB batch ("Batch too large") forever.
    customers = [f"euro-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    base = random.randint(10**9, 10**12)
    with psycopg.connect(notes.dsn) as conn, conn.transaction():
        for n, customer in enumerate(customers):
            conn.execute("INSERT INTO notes VALUES (%s, %s, %s)", (base + n, customer, "€" * 10_000))
    for customer in customers:
        found = wait_for(lambda c=customer: attributes(view_of(reader, c), "note"), what="a note of 30 KB")
        assert next(iter(found.values()))["body"] == "€" * 10_000


@pytest.fixture
def writer(stack: Settings, store_session: Session) -> ViewWriter:
    return ViewWriter(store_session, stack.store.keyspace)


def test_the_store_refusing_a_write_is_a_permanent_rejection_not_an_outage(writer: ViewWriter) -> None:
    # Cassandra refuses a write timestamp of Long.MIN_VALUE ("Out of bound timestamp"): an invalid
    # request, which no retry will ever get through.
    from store.exceptions import StoreRejected

    row = PutRow(RowKey("c", "note", "s", "public.t", "1"), {"a": "b"}, True, -(2**63), 0)
    with pytest.raises(StoreRejected) as refused:
        writer.apply([row])
    assert refused.value.reason == "invalid_request"
    assert "Out of bound timestamp" in str(refused.value)


def test_a_key_over_the_stores_limit_is_refused_before_anything_is_written(
    writer: ViewWriter, reader: CustomerViewClient
) -> None:
    customer = f"limit-{uuid.uuid4().hex[:8]}"
    ts = int(datetime.now(UTC).timestamp() * 1_000_000)
    good = PutRow(RowKey(customer, "note", "s", "public.t", "1"), {"a": "b"}, True, ts, ts)
    too_long = PutRow(RowKey(customer, "note", "s", "public.t", "e" * 70_000), {"a": "b"}, True, ts, ts)
    from store.exceptions import StoreRejected

    with pytest.raises(StoreRejected, match="Key length of 70013 is longer than maximum of 65535"):
        writer.apply([good, too_long])
    assert view_of(reader, customer) is None
