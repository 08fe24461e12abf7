"""Reads of the entity index: who owns an entity, which entities hang off a parent, a table's entities.

    index = EntityIndex(session, "scv")
    owners = index.get_many([EntityRef("core", "public.cards", "7")])

Only the replicator's own index is consulted to place a change — never a system of record — so the
view keeps working while a source is down.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent

from scv.contracts.cells import AttributeValue, decode_value
from store.exceptions import StoreRejected, StoreUnavailable
from store.mutations import EntityRef, IndexEntry, KeyRef, RowKey
from store.session import PERMANENT_ERRORS, TRANSIENT_ERRORS

__all__ = ["INDEX_BUCKETS", "IN_CHUNK", "EntityIndex", "PartitionRow", "StoredRow", "bucket_of"]

# Fixed by migration 0001: changing it needs a migration that rewrites entity_index.
INDEX_BUCKETS = 256

# Entities (and so at most as many buckets) per multi-partition read. ScyllaDB refuses more than 100
# partition-key or clustering-key restrictions per query (max_*_key_restrictions_per_query), and
# the coordinator's work grows with buckets x ids: 32 measured best on the local stack.
IN_CHUNK = 32


def bucket_of(entity_id: str) -> int:
    # crc32, not hash(): it must be the same in every process and every Python version.
    return zlib.crc32(entity_id.encode()) % INDEX_BUCKETS


class StoredRow:
    __slots__ = ("attributes", "ended_at_us", "home_id", "source_ts_us")

    def __init__(
        self,
        attributes: dict[str, AttributeValue],
        source_ts_us: int,
        home_id: str | None = None,
        ended_at_us: int | None = None,
    ) -> None:
        self.attributes = attributes
        self.source_ts_us = source_ts_us
        self.home_id = home_id
        self.ended_at_us = ended_at_us


def _micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    return int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1_000_000)


def _stored(row: Any) -> StoredRow:
    attributes = {name: decode_value(cell) for name, cell in (row.attributes or {}).items()}
    return StoredRow(attributes, row.source_ts_us or 0, row.home_id, _micros(row.ended_at))


# The columns every index read selects, in the order _entry reads them.
_ENTRY_COLUMNS = (
    "entity_id, kind, customer_id, parent_table, parent_id, owner_ts, home_id, parent_source, parent_key, "
    "lookup_keys"
)


def _entry(source: str, table: str, row: Any) -> IndexEntry:
    parent: EntityRef | KeyRef | None = None
    if row.parent_key:
        parent = KeyRef(row.parent_source or source, row.parent_table, row.parent_key, row.parent_id)
    elif row.parent_table:
        parent = EntityRef(source, row.parent_table, row.parent_id)
    return IndexEntry(
        ref=EntityRef(source, table, row.entity_id),
        kind=row.kind,
        customer_id=row.customer_id,
        parent=parent,
        owner_ts=row.owner_ts or 0,
        home_id=row.home_id,
        keys=tuple(sorted((row.lookup_keys or {}).items())),
    )


@dataclass(frozen=True, slots=True)
class PartitionRow:
    """One row of a customer's partition, as a merge sweep reads it."""

    key: RowKey
    row: StoredRow


_EntryArgs = tuple[str, str, list[int], list[str]]
_ChildrenArgs = tuple[str, str, list[str]]


def _entry_args(refs: Iterable[EntityRef]) -> list[_EntryArgs]:
    """One (source, table, buckets, ids) request per ``IN_CHUNK`` entities of a table."""
    by_table: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ref in dict.fromkeys(refs):
        by_table[(ref.source, ref.table)].append(ref.entity_id)
    args: list[_EntryArgs] = []
    for (source, table), ids in by_table.items():
        # Neighbouring buckets in one request: fewer distinct partitions per request.
        ids.sort(key=bucket_of)
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            args.append((source, table, sorted({bucket_of(i) for i in chunk}), chunk))
    return args


def _entries(args: Sequence[_EntryArgs], results: Sequence[list[Any]]) -> dict[EntityRef, IndexEntry | None]:
    found: dict[EntityRef, IndexEntry | None] = {}
    for (source, table, _buckets, ids), rows in zip(args, results, strict=True):
        for entity_id in ids:
            found[EntityRef(source, table, entity_id)] = None
        for row in rows:
            found[EntityRef(source, table, row.entity_id)] = _entry(source, table, row)
    return found


def _children_args(parents: Iterable[EntityRef]) -> list[_ChildrenArgs]:
    by_table: dict[tuple[str, str], list[str]] = defaultdict(list)
    for parent in dict.fromkeys(parents):
        by_table[(parent.source, parent.table)].append(parent.entity_id)
    return [
        (source, table, ids[start : start + IN_CHUNK])
        for (source, table), ids in by_table.items()
        for start in range(0, len(ids), IN_CHUNK)
    ]


def _children(
    args: Sequence[_ChildrenArgs], results: Sequence[list[Any]]
) -> dict[EntityRef, list[EntityRef]]:
    found: dict[EntityRef, list[EntityRef]] = {}
    for (source, table, ids), rows in zip(args, results, strict=True):
        for parent_id in ids:
            found[EntityRef(source, table, parent_id)] = []
        for row in rows:
            child = EntityRef(source, row.child_table, row.child_id)
            found[EntityRef(source, table, row.parent_id)].append(child)
    return found


_KeyArgs = tuple[str, str, str, list[str]]


def _key_args(keys: Iterable[KeyRef]) -> list[_KeyArgs]:
    """One (source, table, key name, values) request per ``IN_CHUNK`` values of one key; each key
    asked once."""
    by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for key in dict.fromkeys(keys):
        by_key[(key.source, key.table, key.key)].append(key.value)
    return [
        (source, table, name, values[start : start + IN_CHUNK])
        for (source, table, name), values in by_key.items()
        for start in range(0, len(values), IN_CHUNK)
    ]


def _by_value(args: Sequence[_KeyArgs], results: Sequence[list[Any]]) -> Iterator[tuple[KeyRef, list[Any]]]:
    """Each key asked with its rows (none when nobody holds its value); rows carry ``key_value``."""
    for (source, table, name, values), rows in zip(args, results, strict=True):
        of_value: dict[str, list[Any]] = {value: [] for value in values}
        for row in rows:
            of_value[row.key_value].append(row)
        for value, found in of_value.items():
            yield KeyRef(source, table, name, value), found


def _owners(found: Iterable[tuple[KeyRef, list[Any]]]) -> dict[KeyRef, list[str]]:
    return {key: sorted(row.entity_id for row in rows) for key, rows in found}


def _key_children(found: Iterable[tuple[KeyRef, list[Any]]]) -> dict[KeyRef, list[EntityRef]]:
    return {key: [EntityRef(r.child_source, r.child_table, r.child_id) for r in rows] for key, rows in found}


class EntityIndex:
    def __init__(self, session: Session, keyspace: str, concurrency: int = 64) -> None:
        self._session = session
        self._concurrency = concurrency
        ks = keyspace
        self._get_in = session.prepare(
            f"SELECT {_ENTRY_COLUMNS} FROM "
            f"{ks}.entity_index WHERE source = ? AND table_name = ? AND bucket IN ? AND entity_id IN ?"
        )
        self._scan_bucket = session.prepare(
            f"SELECT {_ENTRY_COLUMNS} FROM {ks}.entity_index "
            "WHERE source = ? AND table_name = ? AND bucket = ?"
        )
        # ``key_value IN ?``: up to IN_CHUNK values of one key per request. One request per value
        # cost the replicator ~0.19 ms and the store 0.12-0.27 ms of CPU per value on the local
        # stack, against ~0.02 and 0.06-0.09 ms in chunks (3 x 2,020 reads of the demo's fiscal
        # codes), and every change placed through a lookup key reads one.
        self._key_owners = session.prepare(
            f"SELECT key_value, entity_id FROM {ks}.key_owners "
            "WHERE source = ? AND table_name = ? AND key_name = ? AND key_value IN ?"
        )
        self._key_children = session.prepare(
            f"SELECT key_value, child_source, child_table, child_id FROM {ks}.key_children "
            "WHERE source = ? AND table_name = ? AND key_name = ? AND key_value IN ?"
        )
        self._partition = session.prepare(
            f"SELECT kind, source, table_name, entity_id, attributes, source_ts_us, home_id, ended_at "
            f"FROM {ks}.customer_view WHERE customer_id = ?"
        )
        self._redirects = session.prepare(f"SELECT customer_id, survivor_id FROM {ks}.customer_redirects")
        self._parked = session.prepare(
            f"SELECT entity_id FROM {ks}.parked_entities WHERE source = ? AND table_name = ? LIMIT ?"
        )
        self._children = session.prepare(
            f"SELECT parent_id, child_table, child_id FROM {ks}.entity_children "
            "WHERE source = ? AND parent_table = ? AND parent_id IN ?"
        )
        # A slice by clustering prefix, not ``entity_id IN ?``: ScyllaDB has refused IN on a
        # clustering column when a collection is selected (scylladb issue 4251), and the rows a move
        # reads are most of the slice anyway.
        self._rows_of_table = session.prepare(
            f"SELECT entity_id, attributes, source_ts_us, home_id, ended_at FROM {ks}.customer_view "
            "WHERE customer_id = ? AND kind = ? AND source = ? AND table_name = ?"
        )

    def get_many(self, refs: Iterable[EntityRef]) -> dict[EntityRef, IndexEntry | None]:
        """Index entries of ``refs`` (None for an entity never indexed), read concurrently.

        Reads are what the replicator pays per change, so each request carries up to
        ``IN_CHUNK`` entities of one table: ``bucket IN (...) AND entity_id IN (...)``. The
        coordinator expands that to every (bucket, id) pair, but an id lives only in its own bucket,
        so every row that comes back is the right one. On the local stack, draining the demo topics
        went from ~1,500 to ~2,050 events/s against one request per bucket.
        """
        args = _entry_args(refs)
        return _entries(args, self._concurrently(self._get_in, args))

    def children_many(self, parents: Iterable[EntityRef]) -> dict[EntityRef, list[EntityRef]]:
        """Children of every parent: up to ``IN_CHUNK`` parents of one table per request."""
        args = _children_args(parents)
        return _children(args, self._concurrently(self._children, args))

    def entries_and_children(
        self, refs: Iterable[EntityRef], parents: Iterable[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], dict[EntityRef, list[EntityRef]]]:
        """``get_many(refs)`` and ``children_many(parents)`` in one concurrent round: one wait for the
        store instead of two in a row."""
        entry_args, children_args = _entry_args(refs), _children_args(parents)
        work = [(self._get_in, a) for a in entry_args] + [(self._children, a) for a in children_args]
        results = self._run(work)
        cut = len(entry_args)
        return _entries(entry_args, results[:cut]), _children(children_args, results[cut:])

    def _concurrently(self, statement: Any, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run one statement per argument tuple, concurrently; every row of every result, in order."""
        return self._run([(statement, a) for a in args])

    def _run(self, work: Sequence[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
        """Run each (statement, arguments) concurrently; every row of every result, in order."""
        if not work:
            return []
        try:
            results = execute_concurrent(
                self._session, work, concurrency=self._concurrency, raise_on_first_error=False
            )
            out: list[Any] = []
            for ok, rows in results:
                if not ok:
                    if isinstance(rows, PERMANENT_ERRORS):
                        # E.g. an entity id over the store's key limit: no retry will read it.
                        raise StoreRejected("invalid_request", f"the store refused a read: {rows}")
                    raise StoreUnavailable(f"store read failed: {rows!r}")
                out.append(list(rows))  # follows any further pages while still inside the try
            return out
        except PERMANENT_ERRORS as exc:
            raise StoreRejected("invalid_request", f"the store refused a read: {exc}") from exc
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"store read failed: {exc}") from exc

    def rows_many(self, keys: Iterable[RowKey]) -> dict[RowKey, StoredRow | None]:
        """The stored rows at ``keys`` (None where there is none), read concurrently.

        One request per (customer, kind, source, table) slice, whatever the number of keys in it: the
        children a move reads share that prefix (all the orphans of one parent, or one customer's
        cards). One request per row made orphan adoption in the benchmark's initial snapshot the
        replicator's largest cost (41% of its loop, sampled with py-spy). Rows of the slice that were
        not asked for are dropped.
        """
        wanted: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
        found: dict[RowKey, StoredRow | None] = {}
        for key in keys:
            wanted[(key.customer_id, key.kind, key.source, key.table)].add(key.entity_id)
            found[key] = None
        args = list(wanted)
        for prefix, rows in zip(args, self._concurrently(self._rows_of_table, args), strict=True):
            ids = wanted[prefix]
            for row in rows:
                if row.entity_id in ids:
                    found[RowKey(*prefix, row.entity_id)] = _stored(row)
        return found

    def key_owners_many(self, keys: Iterable[KeyRef]) -> dict[KeyRef, list[str]]:
        """Entity ids holding each lookup key value (sorted; empty when nobody holds it)."""
        args = _key_args(keys)
        return _owners(_by_value(args, self._concurrently(self._key_owners, args)))

    def key_children_many(self, keys: Iterable[KeyRef]) -> dict[KeyRef, list[EntityRef]]:
        """Entities placed through each lookup key value."""
        args = _key_args(keys)
        return _key_children(_by_value(args, self._concurrently(self._key_children, args)))

    def owners_and_key_children(
        self, keys: Iterable[KeyRef], waiting: Iterable[KeyRef]
    ) -> tuple[dict[KeyRef, list[str]], dict[KeyRef, list[EntityRef]]]:
        """``key_owners_many(keys)`` and ``key_children_many(waiting)`` in one concurrent round."""
        owner_args, children_args = _key_args(keys), _key_args(waiting)
        work = [(self._key_owners, a) for a in owner_args] + [(self._key_children, a) for a in children_args]
        results = self._run(work)
        cut = len(owner_args)
        return (
            _owners(_by_value(owner_args, results[:cut])),
            _key_children(_by_value(children_args, results[cut:])),
        )

    def partition_rows(self, customer_ids: Iterable[str]) -> dict[str, list[PartitionRow]]:
        """Every row of each customer's partition (a merge moves them; one read per partition)."""
        args = [(customer,) for customer in dict.fromkeys(customer_ids)]
        return {
            customer: [
                PartitionRow(RowKey(customer, r.kind, r.source, r.table_name, r.entity_id), _stored(r))
                for r in rows
            ]
            for (customer,), rows in zip(args, self._concurrently(self._partition, args), strict=True)
        }

    def redirects(self) -> dict[str, str]:
        """Every merged customer -> its survivor (a small table: merges are rare)."""
        return {
            row.customer_id: row.survivor_id
            for rows in self._concurrently(self._redirects, [()])
            for row in rows
        }

    def parked_many(self, tables: Iterable[tuple[str, str]], limit: int) -> dict[tuple[str, str], list[str]]:
        """Up to ``limit`` entities waiting in each table's waiting room, every table in one round."""
        tables = list(dict.fromkeys(tables))
        results = self._concurrently(self._parked, [(source, table, limit) for source, table in tables])
        return {table: [row.entity_id for row in rows] for table, rows in zip(tables, results, strict=True)}

    def table_entries(self, tables: Iterable[tuple[str, str]]) -> Iterator[IndexEntry]:
        """Every indexed entity of these (source, table)s (truncate, cache warm-up): buckets read
        ``IN_CHUNK`` at a time, concurrently, so memory holds a few buckets, not a whole table."""
        for source, table in tables:
            for start in range(0, INDEX_BUCKETS, IN_CHUNK):
                args = [(source, table, bucket) for bucket in range(start, start + IN_CHUNK)]
                for rows in self._concurrently(self._scan_bucket, args):
                    for row in rows:
                        yield _entry(source, table, row)
