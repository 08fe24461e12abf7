"""What the store did for each applied change during a measured window: partitions read and write
requests, by table.

    with StoreWork(session, "scv_bench_1a2b3c") as work:
        ...drive the load...
    work.per_change(applied=60_000)   # {"entity_index": TableWork(reads=0.63, writes=0.04), ...}

The replicator's cost in the store is mostly reads: the index entries, parent entries and lookup-key
owners it must know before it can place a change (consumer/applier.py). The peer writes one row per
change and reads nothing, so this is the figure that says how much more work per change the wide
row costs the store, table by table.

Cassandra (4.1+) counts, per table, every partition its coordinator read and every write request
(``system_views.coordinator_read_latency`` / ``coordinator_write_latency``): an ``IN`` read over 20
partitions counts 20, an unlogged batch counts once per table it writes however many partitions it
holds (measured on Cassandra 5; tests/integration/test_bench_store_work.py). ScyllaDB has no such
virtual tables: the counts are empty and the report leaves the section out.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from cassandra import InvalidRequest
from cassandra.cluster import Session

__all__ = ["StoreWork", "TableWork", "table_work"]

log = structlog.get_logger(__name__)

_VIEWS = {"reads": "coordinator_read_latency", "writes": "coordinator_write_latency"}

# (table, "reads" | "writes") -> partitions read / write requests since the store started
Counts = dict[tuple[str, str], int]


@dataclass(frozen=True)
class TableWork:
    reads: float
    writes: float


def table_work(before: Counts, after: Counts, applied: float) -> dict[str, TableWork]:
    """Partitions read and write requests per applied change, by table (tables with neither left out)."""
    if applied <= 0:
        return {}
    tables = sorted({table for table, _kind in after})
    work: dict[str, TableWork] = {}
    for table in tables:
        reads, writes = (
            max(0, after.get((table, kind), 0) - before.get((table, kind), 0)) / applied
            for kind in ("reads", "writes")
        )
        if reads or writes:
            work[table] = TableWork(reads, writes)
    return work


class StoreWork:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace
        self._before: Counts = {}
        self._after: Counts = {}

    def counts(self) -> Counts:
        counts: Counts = {}
        for kind, view in _VIEWS.items():
            try:
                rows = self._session.execute(
                    f"SELECT table_name, count FROM system_views.{view} WHERE keyspace_name = %s "
                    "ALLOW FILTERING",
                    (self._keyspace,),
                )
            except InvalidRequest as exc:  # no such virtual table (ScyllaDB): nothing to count
                log.info("store_work_unavailable", error=str(exc))
                return {}
            for row in rows:
                counts[(row.table_name, kind)] = int(row.count)
        return counts

    def __enter__(self) -> Self:
        self._before = self.counts()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._after = self.counts() if self._before else {}

    def per_change(self, applied: float) -> dict[str, TableWork]:
        return table_work(self._before, self._after, applied)
