"""An in-memory stand-in for the store's index reads and the writer, with CQL's last-write-wins.

Every table is a dict of cell -> (write timestamp, value); a write lands when its timestamp is newer,
or equal for a delete (CQL: a tombstone wins a tie). Reads count their rounds, so tests can assert how
many round trips an operation costs. The same behaviour on the real store is covered by the
integration tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TypeVar, cast

from consumer.applier import Applier
from consumer.index_cache import IndexCache
from consumer.planner import Redirects
from store.index import EntityIndex, PartitionRow, StoredRow
from store.intents import PendingIntent, SettleIntents, SettleWork
from store.mutations import (
    DeleteIndex,
    DeleteKey,
    DeleteRedirect,
    DeleteRow,
    EndRow,
    EntityRef,
    IndexEntry,
    KeyRef,
    LinkChild,
    LinkKeyChild,
    Mutation,
    Park,
    PutIndex,
    PutKey,
    PutRedirect,
    PutRow,
    RowKey,
    UnlinkChild,
    UnlinkKeyChild,
    Unpark,
)
from store.truncations import TruncationLog
from store.writer import ViewWriter

K = TypeVar("K")
V = TypeVar("V")


class FakeStore:
    def __init__(self) -> None:
        self.index: dict[EntityRef, tuple[int, IndexEntry | None]] = {}
        self.links: dict[EntityRef, dict[EntityRef, tuple[int, bool]]] = {}
        self.key_links: dict[KeyRef, dict[EntityRef, tuple[int, bool]]] = {}
        self.owners: dict[KeyRef, dict[str, tuple[int, bool]]] = {}
        self.rows: dict[RowKey, tuple[int, StoredRow | None]] = {}
        self.ended: dict[RowKey, tuple[int, int | None]] = {}
        self.redirect_rows: dict[str, tuple[int, str | None]] = {}
        self.parked_rows: dict[EntityRef, tuple[int, bool]] = {}
        self.rounds: Counter[str] = Counter()

    # -- EntityIndex -----------------------------------------------------------------------------

    def get_many(self, refs: Iterable[EntityRef]) -> dict[EntityRef, IndexEntry | None]:
        self.rounds["get_many"] += 1
        return {ref: self.index.get(ref, (0, None))[1] for ref in refs}

    def children_many(self, parents: Iterable[EntityRef]) -> dict[EntityRef, list[EntityRef]]:
        self.rounds["children_many"] += 1
        links = self.links
        return {p: sorted((c for c, (_, on) in links.get(p, {}).items() if on), key=str) for p in parents}

    def entries_and_children(
        self, refs: Iterable[EntityRef], parents: Iterable[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], dict[EntityRef, list[EntityRef]]]:
        self.rounds["entries_and_children"] += 1
        links = self.links
        children = {p: sorted((c for c, (_, on) in links.get(p, {}).items() if on), key=str) for p in parents}
        return {ref: self.index.get(ref, (0, None))[1] for ref in refs}, children

    def owners_and_key_children(
        self, keys: Iterable[KeyRef], waiting: Iterable[KeyRef]
    ) -> tuple[dict[KeyRef, list[str]], dict[KeyRef, list[EntityRef]]]:
        keys, waiting = list(keys), list(waiting)
        if keys or waiting:
            self.rounds["owners_and_key_children"] += 1
        owners = {k: sorted(i for i, (_, on) in self.owners.get(k, {}).items() if on) for k in keys}
        links = self.key_links
        children = {k: sorted((c for c, (_, on) in links.get(k, {}).items() if on), key=str) for k in waiting}
        return owners, children

    def key_owners_many(self, keys: Iterable[KeyRef]) -> dict[KeyRef, list[str]]:
        self.rounds["key_owners_many"] += 1
        return {k: sorted(i for i, (_, on) in self.owners.get(k, {}).items() if on) for k in keys}

    def key_children_many(self, keys: Iterable[KeyRef]) -> dict[KeyRef, list[EntityRef]]:
        self.rounds["key_children_many"] += 1
        links = self.key_links
        return {k: sorted((c for c, (_, on) in links.get(k, {}).items() if on), key=str) for k in keys}

    def rows_many(self, keys: Iterable[RowKey]) -> dict[RowKey, StoredRow | None]:
        self.rounds["rows_many"] += 1
        return {key: self._row(key) for key in keys}

    def partition_rows(self, customer_ids: Iterable[str]) -> dict[str, list[PartitionRow]]:
        self.rounds["partition_rows"] += 1
        out: dict[str, list[PartitionRow]] = {}
        for customer in customer_ids:
            out[customer] = [
                PartitionRow(key, row)
                for key in sorted(self.rows, key=str)
                if key.customer_id == customer and (row := self._row(key)) is not None
            ]
        return out

    def redirects(self) -> dict[str, str]:
        return {c: s for c, (_, s) in self.redirect_rows.items() if s is not None}

    def parked_many(self, tables: Iterable[tuple[str, str]], limit: int) -> dict[tuple[str, str], list[str]]:
        self.rounds["parked_many"] += 1
        return {(source, table): self.parked(source, table, limit) for source, table in tables}

    def parked(self, source: str, table: str, limit: int) -> list[str]:
        waiting = [
            r for r, (_, on) in self.parked_rows.items() if on and (r.source, r.table) == (source, table)
        ]
        return sorted(r.entity_id for r in waiting)[:limit]

    def table_entries(self, tables: Iterable[tuple[str, str]]) -> Iterator[IndexEntry]:
        wanted = set(tables)
        for ref, (_, entry) in sorted(self.index.items(), key=lambda item: str(item[0])):
            if entry is not None and (ref.source, ref.table) in wanted:
                yield entry

    def _row(self, key: RowKey) -> StoredRow | None:
        row = self.rows.get(key, (0, None))[1]
        if row is None:
            return None
        ended = self.ended.get(key, (0, None))[1]
        return StoredRow(row.attributes, row.source_ts_us, row.home_id, ended)

    # -- ViewWriter ------------------------------------------------------------------------------

    def apply(self, mutations: Iterable[Mutation]) -> int:
        self.rounds["write"] += 1
        for m in mutations:
            match m:
                case PutRow(key=key, attributes=attributes, write_ts=ts, source_ts_us=src):
                    self._put(self.rows, key, ts, StoredRow(dict(attributes), src, m.home_id))
                    self._put(self.ended, key, ts, m.ended_at_us)
                case DeleteRow(key=key, write_ts=ts):
                    self._put(self.rows, key, ts, None, tombstone=True)
                case EndRow(key=key, write_ts=ts):
                    self._put(self.ended, key, ts, ts)
                case PutIndex(entry=entry, write_ts=ts):
                    self._put(self.index, entry.ref, ts, entry)
                case DeleteIndex(ref=ref, write_ts=ts):
                    self._put(self.index, ref, ts, None, tombstone=True)
                case LinkChild(parent=parent, child=child, write_ts=ts):
                    self._put(self.links.setdefault(parent, {}), child, ts, True)
                case UnlinkChild(parent=parent, child=child, write_ts=ts):
                    self._put(self.links.setdefault(parent, {}), child, ts, False, tombstone=True)
                case LinkKeyChild(key=key, child=child, write_ts=ts):
                    self._put(self.key_links.setdefault(key, {}), child, ts, True)
                case UnlinkKeyChild(key=key, child=child, write_ts=ts):
                    self._put(self.key_links.setdefault(key, {}), child, ts, False, tombstone=True)
                case PutKey(key=key, owner=owner, write_ts=ts):
                    self._put(self.owners.setdefault(key, {}), owner.entity_id, ts, True)
                case DeleteKey(key=key, owner=owner, write_ts=ts):
                    self._put(self.owners.setdefault(key, {}), owner.entity_id, ts, False, tombstone=True)
                case PutRedirect(customer_id=customer, survivor_id=survivor, write_ts=ts):
                    self._put(self.redirect_rows, customer, ts, survivor)
                case DeleteRedirect(customer_id=customer, write_ts=ts):
                    self._put(self.redirect_rows, customer, ts, None, tombstone=True)
                case Park(ref=ref, write_ts=ts):
                    self._put(self.parked_rows, ref, ts, True)
                case Unpark(ref=ref, write_ts=ts):
                    self._put(self.parked_rows, ref, ts, False, tombstone=True)
        return 1

    @staticmethod
    def _put(table: dict[K, tuple[int, V]], key: K, ts: int, value: V, *, tombstone: bool = False) -> None:
        if key not in table or ts > table[key][0] or (ts == table[key][0] and tombstone):
            table[key] = (ts, value)

    # -- seeding and reading ---------------------------------------------------------------------

    def place(
        self, table: str, entity_id: str, customer: str, parent: EntityRef | None, ts: int = 100
    ) -> EntityRef:
        ref = EntityRef("core", table, entity_id)
        kind = table.removeprefix("public.")
        self.apply(
            [
                PutRow(RowKey(customer, kind, "core", table, entity_id), {"id": entity_id}, True, ts, ts),
                PutIndex(IndexEntry(ref, kind, customer, parent, ts), ts),
                *([LinkChild(parent, ref, ts)] if parent else []),
            ]
        )
        return ref

    def entry(self, ref: EntityRef) -> IndexEntry | None:
        return self.index.get(ref, (0, None))[1]

    def customer_of(self, ref: EntityRef) -> str | None:
        entry = self.entry(ref)
        return entry.customer_id if entry else None

    def view_of(self, customer: str) -> set[str]:
        return {key.entity_id for key, (_, row) in self.rows.items() if row and key.customer_id == customer}

    def rows_of(self, customer: str) -> dict[str, StoredRow]:
        """entity id -> row of one partition (ended rows included)."""
        rows = {key.entity_id: self._row(key) for key in self.rows if key.customer_id == customer}
        return {entity_id: row for entity_id, row in rows.items() if row is not None}


class FakeTruncationLog:
    """The store's table_truncations, in memory: what every process of the group would see."""

    def __init__(self) -> None:
        self.truncated: dict[tuple[str, str], int] = {}

    def record(self, source: str, table: str, truncated_ts: int) -> None:
        key = (source, table)
        self.truncated[key] = max(self.truncated.get(key, 0), truncated_ts)

    def of_sources(self, sources: Iterable[str]) -> dict[tuple[str, str], int]:
        wanted = set(sources)
        return {key: ts for key, ts in self.truncated.items() if key[0] in wanted}


class FakeSettleIntents:
    """The store's settle_intents, in memory: (worker, seq) -> (work, write timestamp)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[SettleWork, int]] = {}
        self.recorded = 0

    def record(self, worker: str, seq: int, work: SettleWork, ts: int) -> None:
        # Through its JSON, as the store keeps it.
        self.rows[(worker, seq)] = (SettleWork.from_json(work.to_json()), ts)
        self.recorded += 1

    def done(self, worker: str, seq: int, ts: int) -> None:
        if (worker, seq) in self.rows and self.rows[(worker, seq)][1] <= ts:
            del self.rows[(worker, seq)]

    def pending(self, written_before_us: int) -> list[PendingIntent]:
        return [
            PendingIntent(worker, seq, work, ts)
            for (worker, seq), (work, ts) in sorted(self.rows.items())
            if ts < written_before_us
        ]


def applier(
    store: FakeStore,
    redirects: Redirects | None = None,
    truncations: FakeTruncationLog | None = None,
    *,
    writer: object | None = None,
    cache: int = 0,
    intents: FakeSettleIntents | None = None,
) -> Applier:
    """One replicator process over ``store``: its writer (``store`` itself unless given), its own
    index cache of ``cache`` entries (0: off), and the group's settle intents when given."""
    return Applier(
        cast(ViewWriter, writer or store),
        cast(EntityIndex, store),
        IndexCache(cache),
        redirects,
        cast(TruncationLog, truncations or FakeTruncationLog()),
        cast(SettleIntents, intents),
    )


__all__ = ["FakeSettleIntents", "FakeStore", "FakeTruncationLog", "applier", "replace"]
