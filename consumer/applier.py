"""Apply a batch of placed changes to the store: read the index, plan, write, then follow moves.

    applier = Applier(ViewWriter(session, ks), EntityIndex(session, ks), IndexCache(300_000))
    outcomes = applier.apply(changes)

Order inside one call, and why:
1. read the index entries the planner needs and the cache cannot vouch for (one concurrent round
   trip; index_cache.py says which it can);
2. write the planned mutations (one concurrent round of per-partition batches);
3. move children of entities whose customer changed — after step 2, so a concurrent child change
   already resolves through the parent's new owner — a few concurrent rounds per tree level;
4. apply truncates;
5. teach the cache the index as written — only now, so a failed call leaves it untouched.
Every step raises ``StoreUnavailable`` on failure; the caller retries the whole call, which is safe
because every mutation is idempotent under its write timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from consumer.index_cache import IndexCache
from consumer.metrics import BATCH_PHASE, WRITE_LATENCY
from consumer.planner import Located, Move, Outcome, Truncate, plan_batch, refs_to_read, trusted_refs
from store.index import EntityIndex
from store.mutations import DeleteIndex, DeleteRow, EntityRef, IndexEntry, Mutation, PutIndex, PutRow, RowKey

__all__ = ["Applier"]

# Children moved per write round: bounds the rows held in memory when one parent has very many.
_MOVE_CHUNK = 2000


class ViewWrites(Protocol):
    """What the applier needs of the store's writer (store/writer.py's ViewWriter, or a tap on it)."""

    def apply(self, mutations: Iterable[Mutation]) -> int: ...


class Applier:
    def __init__(self, writer: ViewWrites, index: EntityIndex, cache: IndexCache) -> None:
        self._writer = writer
        self._index = index
        self._cache = cache

    def apply(self, changes: Sequence[Located]) -> list[Outcome]:
        started = time.perf_counter()
        known, to_read = self._cache.split(refs_to_read(changes), trusted_refs(changes))
        known.update(self._index.get_many(to_read))
        plan = plan_batch(changes, known)
        planned = time.perf_counter()
        BATCH_PHASE.labels("index_read").observe(planned - started)
        self._writer.apply(plan.mutations)
        written = time.perf_counter()
        WRITE_LATENCY.observe(written - planned)
        BATCH_PHASE.labels("write").observe(written - planned)
        if plan.moves:
            self._move_children(plan.moves)
            BATCH_PHASE.labels("moves").observe(time.perf_counter() - written)
        if plan.truncates:
            truncating = time.perf_counter()
            for truncate in plan.truncates:
                self._truncate(truncate)
            BATCH_PHASE.labels("truncates").observe(time.perf_counter() - truncating)
        self._cache.learn(plan.index)
        for truncate in plan.truncates:
            self._cache.forget_table(truncate.source, truncate.table)
        return plan.outcomes

    def warm_cache(self, tables: Sequence[tuple[str, str]]) -> int:
        """Empty the cache, then load the index entries of these (direct-key) tables into it."""
        self._cache.clear()
        # Lazy: a disabled cache never pulls from the generator, so nothing is read.
        return self._cache.warm(self._index.table_entries(tables))

    def _move_children(self, moves: Sequence[Move]) -> None:
        """Move the children of every moved parent to its new customer, one tree level at a time.

        Each level costs four concurrent rounds (children, their index entries, their rows, the
        writes) whatever the number of parents: an initial snapshot whose cards were consumed before
        their accounts adopts tens of thousands of orphans, and one round trip per parent made that
        drain crawl at ~150 events/s (measured in the benchmark's backlog).
        """
        pending = list(moves)
        while pending:
            children = self._index.children_many(move.parent for move in pending)
            # A parent moved twice in one batch: its children follow the newest move.
            latest: dict[EntityRef, Move] = {}
            for move in pending:
                if children.get(move.parent) and (
                    move.parent not in latest or move.write_ts >= latest[move.parent].write_ts
                ):
                    latest[move.parent] = move
            if not latest:
                return
            entries = self._index.get_many(child for parent in latest for child in children[parent])
            movable: list[tuple[EntityRef, IndexEntry, Move, RowKey]] = []
            for parent, move in latest.items():
                for child in children[parent]:
                    entry = entries.get(child)
                    # A stale link (the child has another parent now) or a child already there.
                    if entry is None or entry.parent != parent or entry.customer_id == move.customer_id:
                        continue
                    old = RowKey(entry.customer_id, entry.kind, child.source, child.table, child.entity_id)
                    movable.append((child, entry, move, old))
            pending = []
            for start in range(0, len(movable), _MOVE_CHUNK):
                chunk = movable[start : start + _MOVE_CHUNK]
                rows = self._index.rows_many(old for _child, _entry, _move, old in chunk)
                mutations: list[Mutation] = []
                for child, entry, move, old in chunk:
                    row = rows[old]
                    # Above the child's own newest state, strictly: a child placed in the orphan
                    # partition wrote its index entry at its own timestamp, and a tie would be broken
                    # by value ("~orphans/..." sorts above most customer ids), keeping the orphan owner.
                    ts = max(move.write_ts, row.source_ts_us if row else 0) + 1
                    mutations.append(DeleteRow(old, ts))
                    if row is not None:
                        new = replace(old, customer_id=move.customer_id)
                        mutations.append(PutRow(new, row.attributes, True, ts, row.source_ts_us))
                    mutations.append(PutIndex(replace(entry, customer_id=move.customer_id, owner_ts=ts), ts))
                    pending.append(Move(child, move.customer_id, ts))
                self._writer.apply(mutations)

    def _truncate(self, truncate: Truncate) -> None:
        mutations: list[Mutation] = []
        for entry in self._index.table_entries([(truncate.source, truncate.table)]):
            mutations.append(
                DeleteRow(
                    RowKey(
                        entry.customer_id, entry.kind, truncate.source, truncate.table, entry.ref.entity_id
                    ),
                    truncate.write_ts,
                )
            )
            mutations.append(DeleteIndex(entry.ref, truncate.write_ts))
            if len(mutations) >= 2000:
                self._writer.apply(mutations)
                mutations = []
        self._writer.apply(mutations)
