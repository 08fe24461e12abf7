"""The benchmark's timeline reads the local store's memtable flushes from Cassandra's log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench.timeline import store_flushes

# Lines as Cassandra 5.0 writes them (copied from the local stack's log), around other lines.
LOG = """\
INFO  [NativePoolCleaner] 2026-12-04 07:02:48,053 ColumnFamilyStore.java:1055 - Enqueuing flush of \
ks.entity_index, Reason: MEMTABLE_LIMIT, Usage: 41.910MiB (16%) on-heap, 28.523MiB (6%) off-heap
INFO  [NativePoolCleaner] 2026-12-04 07:04:48,340 AbstractAllocatorMemtable.java:293 - Flushing largest \
CFS(Keyspace='ks', ColumnFamily='customer_view') to free up room. Used total: 0.33/0.23
INFO  [NativePoolCleaner] 2026-12-04 07:04:48,340 ColumnFamilyStore.java:1055 - Enqueuing flush of \
ks.customer_view, Reason: MEMTABLE_LIMIT, Usage: 52.798MiB (21%) on-heap, 100.929MiB (20%) off-heap
INFO  [MigrationStage:1] 2026-12-04 07:05:01,007 ColumnFamilyStore.java:1055 - Enqueuing flush of \
system_schema.tables, Reason: SCHEMA_CHANGE
WARN  [ReadStage-2] 2026-12-04 07:05:02,000 ReadCommand.java:644 - Read 0 live rows and 1213 tombstone cells
"""


def _at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_flushes_since_a_time_come_with_their_table_reason_and_size(tmp_path: Path) -> None:
    log = tmp_path / "cassandra.log"
    log.write_text(LOG)

    flushes = store_flushes(log, since=_at("2026-12-04 07:03:00.000"))

    assert [(f.at, f.name) for f in flushes] == [
        (_at("2026-12-04 07:04:48.340"), "store_flush"),
        (_at("2026-12-04 07:05:01.007"), "store_flush"),
    ]
    assert flushes[0].detail == (
        "table=ks.customer_view, reason=MEMTABLE_LIMIT, memtable=52.798 MiB on-heap + 100.929 MiB off-heap"
    )
    assert flushes[1].detail == "table=system_schema.tables, reason=SCHEMA_CHANGE"


def test_no_log_no_flushes(tmp_path: Path) -> None:
    assert store_flushes(tmp_path / "absent.log") == []
