"""Apply a batch of placed changes to the store: read the index, plan, write, then follow moves.

    applier = Applier(ViewWriter(session, ks), EntityIndex(session, ks), IndexCache(300_000),
                      TruncationLog(session, ks))
    outcomes = applier.apply(changes)

Order inside one call, and why:
1. read the index entries the planner needs and the cache cannot vouch for (one concurrent round
   trip; index_cache.py says which it can), and the latest truncate of any source not seen yet;
2. plan (row changes older than their table's latest truncate are refused) and write the planned
   mutations (one concurrent round of per-partition batches);
3. move children of entities whose customer changed — after step 2, so a concurrent child change
   already resolves through the parent's new owner — a few concurrent rounds per tree level;
4. apply truncates: record the truncate's time in the store first, then delete the table's indexed
   entities;
5. read the truncate times again and delete what this call wrote older than a truncate it did not
   know at step 2. Race-free with step 4 of another process: either that truncate's record is visible
   here (this call deletes its own old rows), or it was recorded after this read, so after this
   call's index writes, and its index scan finds and deletes them;
6. teach the cache the index as written — only now, so a failed call leaves it untouched.
Every step raises ``StoreUnavailable`` on failure; the caller retries the whole call, which is safe
because every mutation is idempotent under its write timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from consumer.index_cache import IndexCache
from consumer.metrics import BATCH_PHASE, WRITE_LATENCY
from consumer.planner import Located, Move, Outcome, Truncate, plan_batch, refs_to_read, trusted_refs
from store.index import EntityIndex
from store.mutations import DeleteIndex, DeleteRow, EntityRef, IndexEntry, Mutation, PutIndex, PutRow, RowKey
from store.truncations import TruncationLog
from store.writer import ViewWriter

__all__ = ["Applier"]

# Children moved per write round: bounds the rows held in memory when one parent has very many.
_MOVE_CHUNK = 2000


class Applier:
    def __init__(
        self, writer: ViewWriter, index: EntityIndex, cache: IndexCache, truncations: TruncationLog
    ) -> None:
        self._writer = writer
        self._index = index
        self._cache = cache
        self._truncation_log = truncations
        # (source, table) -> commit time of its latest truncate, as far as this process knows.
        self._truncated: dict[tuple[str, str], int] = {}
        self._truncations_read: set[str] = set()

    def apply(self, changes: Sequence[Located]) -> list[Outcome]:
        started = time.perf_counter()
        sources = {change.event.source for change in changes}
        if sources - self._truncations_read:
            self._learn_truncations(self._truncation_log.of_sources(sources - self._truncations_read))
            self._truncations_read |= sources
        known, to_read = self._cache.split(refs_to_read(changes), trusted_refs(changes))
        known.update(self._index.get_many(to_read))
        plan = plan_batch(changes, known, self._truncated)
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
        if any(isinstance(m, PutRow | PutIndex) for m in plan.mutations):
            self._undo_rows_older_than_new_truncates(plan.mutations, sources)
        self._cache.learn(plan.index)
        for truncate in plan.truncates:
            self._cache.forget_table(truncate.source, truncate.table)
        return plan.outcomes

    def _learn_truncations(self, found: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
        """Remember truncate times; returns the tables whose latest truncate is newer than known."""
        newer = [key for key, ts in found.items() if ts > self._truncated.get(key, 0)]
        for key in newer:
            self._truncated[key] = found[key]
        return newer

    def _undo_rows_older_than_new_truncates(self, written: Sequence[Mutation], sources: set[str]) -> None:
        """Step 5: a truncate applied by another process while this call wrote its rows."""
        newer = set(self._learn_truncations(self._truncation_log.of_sources(sources)))
        if not newer:
            return
        undo: list[Mutation] = []
        for mutation in written:
            if isinstance(mutation, PutRow):
                key = (mutation.key.source, mutation.key.table)
                if key in newer and mutation.write_ts < self._truncated[key]:
                    undo.append(DeleteRow(mutation.key, self._truncated[key]))
            elif isinstance(mutation, PutIndex):
                ref = mutation.entry.ref
                key = (ref.source, ref.table)
                if key in newer and mutation.write_ts < self._truncated[key]:
                    undo.append(DeleteIndex(ref, self._truncated[key]))
        for source, table in newer:
            self._cache.forget_table(source, table)
        self._writer.apply(undo)

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
        # Recorded before the index scan: step 5 of every other process relies on that order.
        self._truncation_log.record(truncate.source, truncate.table, truncate.write_ts)
        key = (truncate.source, truncate.table)
        self._truncated[key] = max(self._truncated.get(key, 0), truncate.write_ts)
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
