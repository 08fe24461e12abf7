"""The benchmark's store-work counts on the real store: what the report's "partitions read / write
requests per applied change" means, checked against requests whose partitions are known."""

from __future__ import annotations

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from bench.store_work import StoreWork
from tests.integration.conftest import Isolated


def test_store_work_counts_every_partition_a_request_reads_or_writes(
    store_session: Session, isolated: Isolated
) -> None:
    ks = isolated.keyspace
    put = store_session.prepare(
        f"INSERT INTO {ks}.entity_index (source, table_name, bucket, entity_id, kind, customer_id) "
        "VALUES ('crm', 'public.customers', ?, ?, 'profile', 'c1')"
    )
    read = store_session.prepare(
        f"SELECT entity_id FROM {ks}.entity_index WHERE source = 'crm' AND table_name = 'public.customers' "
        "AND bucket IN ? AND entity_id IN ?"
    )
    with StoreWork(store_session, ks) as work:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for bucket in (1, 2):
            batch.add(put, (bucket, f"e{bucket}"))
        store_session.execute(batch)  # one write request over two partitions
        store_session.execute(put, (4, "e4"))  # another write request
        store_session.execute(read, ([1, 2, 3], ["e1", "e2"]))  # one read request, three partitions
    counted = work.per_change(applied=1)
    # Reads count partitions; writes count requests (a batch once per table it writes).
    assert counted["entity_index"].reads == 3
    assert counted["entity_index"].writes == 2
    # The other tables of the keyspace saw nothing, so they are left out.
    assert set(counted) == {"entity_index"}
