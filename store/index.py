"""Reads of the entity index: who owns an entity, which entities hang off a parent, a table's entities.

    index = EntityIndex(session, "scv")
    owners = index.get_many([EntityRef("core", "public.cards", "7")])

Only the replicator's own index is consulted to place a change — never a system of record — so the
view keeps working while a source is down.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from store.exceptions import StoreUnavailable
from store.mutations import EntityRef, IndexEntry, RowKey
from store.session import TRANSIENT_ERRORS
from store.values import AttributeValue, decode_value

__all__ = ["INDEX_BUCKETS", "EntityIndex", "StoredRow", "bucket_of"]

# Fixed by migration 0001: changing it needs a migration that rewrites entity_index.
INDEX_BUCKETS = 256


def bucket_of(entity_id: str) -> int:
    # crc32, not hash(): it must be the same in every process and every Python version.
    return zlib.crc32(entity_id.encode()) % INDEX_BUCKETS


class StoredRow:
    __slots__ = ("attributes", "source_ts_us")

    def __init__(self, attributes: dict[str, AttributeValue], source_ts_us: int) -> None:
        self.attributes = attributes
        self.source_ts_us = source_ts_us


def _entry(source: str, table: str, row: Any) -> IndexEntry:
    parent = EntityRef(source, row.parent_table, row.parent_id) if row.parent_table else None
    return IndexEntry(
        ref=EntityRef(source, table, row.entity_id),
        kind=row.kind,
        customer_id=row.customer_id,
        parent=parent,
        owner_ts=row.owner_ts or 0,
    )


class EntityIndex:
    def __init__(self, session: Session, keyspace: str, concurrency: int = 64) -> None:
        self._session = session
        self._concurrency = concurrency
        ks = keyspace
        self._get_in = session.prepare(
            f"SELECT entity_id, kind, customer_id, parent_table, parent_id, owner_ts FROM "
            f"{ks}.entity_index WHERE source = ? AND table_name = ? AND bucket = ? AND entity_id IN ?"
        )
        self._scan_bucket = session.prepare(
            f"SELECT entity_id, kind, customer_id, parent_table, parent_id, owner_ts FROM "
            f"{ks}.entity_index WHERE source = ? AND table_name = ? AND bucket = ?"
        )
        self._children = session.prepare(
            f"SELECT child_table, child_id FROM {ks}.entity_children "
            "WHERE source = ? AND parent_table = ? AND parent_id = ?"
        )
        self._row = session.prepare(
            f"SELECT attributes, source_ts_us FROM {ks}.customer_view WHERE customer_id = ? AND kind = ? "
            "AND source = ? AND table_name = ? AND entity_id = ?"
        )

    def get_many(self, refs: Iterable[EntityRef]) -> dict[EntityRef, IndexEntry | None]:
        """Index entries of ``refs``: one ``IN`` query per index partition, all concurrently.

        Grouping by partition is what keeps the index affordable: a batch of 2,000 changes of one
        table costs at most 256 reads (one per bucket), not 2,000 round trips.
        """
        groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        for ref in dict.fromkeys(refs):
            groups[(ref.source, ref.table, bucket_of(ref.entity_id))].append(ref.entity_id)
        if not groups:
            return {}
        keys = list(groups)
        args = [(source, table, bucket, groups[(source, table, bucket)]) for source, table, bucket in keys]
        try:
            results = execute_concurrent_with_args(
                self._session, self._get_in, args, concurrency=self._concurrency, raise_on_first_error=False
            )
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"entity index read failed: {exc}") from exc
        found: dict[EntityRef, IndexEntry | None] = {}
        for (source, table, _bucket), (ok, rows) in zip(keys, results, strict=True):
            if not ok:
                raise StoreUnavailable(f"entity index read failed for {source}/{table}: {rows!r}")
            for entity_id in groups[(source, table, _bucket)]:
                found[EntityRef(source, table, entity_id)] = None
            for row in rows:
                found[EntityRef(source, table, row.entity_id)] = _entry(source, table, row)
        return found

    def children(self, parent: EntityRef) -> list[EntityRef]:
        return self.children_many([parent])[parent]

    def children_many(self, parents: Iterable[EntityRef]) -> dict[EntityRef, list[EntityRef]]:
        """Children of every parent, read concurrently (one partition each)."""
        unique = list(dict.fromkeys(parents))
        if not unique:
            return {}
        args = [(p.source, p.table, p.entity_id) for p in unique]
        try:
            results = execute_concurrent_with_args(
                self._session, self._children, args, concurrency=self._concurrency, raise_on_first_error=False
            )
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"entity children read failed: {exc}") from exc
        found: dict[EntityRef, list[EntityRef]] = {}
        for parent, (ok, rows) in zip(unique, results, strict=True):
            if not ok:
                raise StoreUnavailable(f"entity children read failed for {parent}: {rows!r}")
            found[parent] = [EntityRef(parent.source, row.child_table, row.child_id) for row in rows]
        return found

    def row(self, key: RowKey) -> StoredRow | None:
        rows = self._run(self._row, (key.customer_id, key.kind, key.source, key.table, key.entity_id))
        row = rows.one()
        if row is None:
            return None
        attributes = {name: decode_value(cell) for name, cell in (row.attributes or {}).items()}
        return StoredRow(attributes, row.source_ts_us or 0)

    def table_entries(self, source: str, table: str) -> Iterator[IndexEntry]:
        """Every indexed entity of one table (for truncate), bucket by bucket, paged."""
        for bucket in range(INDEX_BUCKETS):
            for row in self._run(self._scan_bucket, (source, table, bucket)):
                yield _entry(source, table, row)

    def _run(self, statement: Any, params: tuple[Any, ...]) -> Any:
        try:
            return self._session.execute(statement, params)
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"store read failed: {exc}") from exc
