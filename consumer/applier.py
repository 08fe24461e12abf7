"""Apply a batch of placed changes to the store: read the index, plan, write, then settle placements.

    applier = Applier(ViewWriter(session, ks), EntityIndex(session, ks), IndexCache(300_000),
                      truncations=TruncationLog(session, ks))
    outcomes = applier.apply(changes)

Order inside one call, and why:
1. read the index entries the planner needs and the cache cannot vouch for, the owners of the
   lookup key values the batch is placed through (one or two concurrent round trips; index_cache.py
   says what the cache can vouch for), the children waiting for the batch's first appearances (in
   the same round as the entries), and the latest truncate of any source not seen yet;
2. plan (row changes older than their table's latest truncate are refused) and write the planned
   mutations (one concurrent round of per-partition batches);
3. settle what the writes changed, each step after the writes so a concurrent change already
   resolves through the new state: children of entities whose customer changed follow them (a few
   concurrent rounds per tree level; a first appearance nobody waited for at step 1 has none to
   adopt, and skips the rounds); rows placed through a lookup key value whose owner changed are
   re-resolved; merges move the rows of the absorbed customer to the survivor (and back on an undo).
   A write that parks or unparks goes in up to three rounds (``_write``: the listing before the rows,
   its removal after them), so a process killed mid-write leaves no unlisted copy in a waiting room.
   A batch that moves or re-keys an entity already placed, or merges a customer, first records what
   this step does (store/intents.py), and the settling round does it again once the record is
   ``settle_intent_grace_s`` old (``finish_intents``), then deletes the record. That second pass, by
   this process or any other, moves what the first could not see or finish: a child another process
   wrote from the parent's old entry while this step ran (it read the children before that write
   landed); the rest of the step when this process died, or a write of it timed out, after the rows
   (the replay or retry sees the entity moved already and plans no settling); and the copies such a
   cut write left where rows moved from or to;
4. apply truncates: record a removing truncate's time in the store first, then delete the table's
   indexed entities;
5. read the truncate times again and delete what this call wrote older than a truncate it did not
   know at step 2. Race-free with step 4 of another process: either that truncate's record is visible
   here (this call deletes its own old rows), or it was recorded after this read, so after this
   call's index writes, and its index scan finds and deletes them;
6. teach the cache the index as written — only now, so a failed call leaves it untouched.
Every step raises ``StoreUnavailable`` on failure; the caller retries the whole call, which is safe
because every mutation is idempotent under its write timestamp.

A settled row is written just above its own newest state (``max(owner_ts, source_ts) + 1``), not at
the time of whatever triggered the move: a later change of the row itself still wins over the moved
copy, and successive moves of one row keep strictly increasing timestamps (its index entry's
``owner_ts`` records each).
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from consumer.index_cache import IndexCache
from consumer.mapping import is_waiting_room, orphan_customer_id
from consumer.metrics import BATCH_PHASE, WRITE_LATENCY
from consumer.planner import (
    Known,
    Located,
    Move,
    Outcome,
    Plan,
    RedirectChange,
    Redirects,
    Truncate,
    first_appearances,
    first_held_keys,
    keys_to_resolve,
    plan_batch,
    refs_to_read,
    trusted_refs,
)
from store.index import EntityIndex
from store.intents import SettleIntents, SettleWork
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
    Unpark,
)
from store.truncations import TruncationLog

__all__ = ["Applier", "Settled"]

log = structlog.get_logger(__name__)

# Rows moved per write round: bounds the rows held in memory when one parent has very many.
_MOVE_CHUNK = 2000
# Settling rounds (tree levels, key hops) per call: a hand-made cycle of keys cannot loop forever.
_MAX_ROUNDS = 16

# (entity's current index entry, target partition, target home)
_Relocation = tuple[IndexEntry, str, str]


def _row_key(entry: IndexEntry) -> RowKey:
    return RowKey(entry.customer_id, entry.kind, entry.ref.source, entry.ref.table, entry.ref.entity_id)


def _owner_refs(holders: Mapping[KeyRef, list[str]]) -> dict[KeyRef, EntityRef | None]:
    """The owner each lookup key value resolves to: the smallest entity id holding it."""
    return {key: EntityRef(key.source, key.table, ids[0]) if ids else None for key, ids in holders.items()}


def _resolves_that_move(
    plan: Plan,
    known: Mapping[EntityRef, IndexEntry | None],
    held: Mapping[KeyRef, EntityRef],
    waiting: Mapping[KeyRef, list[EntityRef]],
) -> set[KeyRef]:
    """The key values whose rows the plan re-resolves, less the values of first appearances through
    which nothing was placed: the same reasoning as ``_moves_that_adopt``, for rows placed through a
    lookup key value (a CRM customer's first appearance, and the interactions waiting for its fiscal
    code)."""
    linked = {m.key for m in plan.mutations if isinstance(m, LinkKeyChild)}
    return {
        resolve.key
        for resolve in plan.key_resolves
        if not (
            waiting.get(resolve.key) == []
            and resolve.key in held
            and known.get(held[resolve.key]) is None
            and resolve.key not in linked
        )
    }


def _moves_that_adopt(
    plan: Plan, known: Mapping[EntityRef, IndexEntry | None], waiting: Mapping[EntityRef, list[EntityRef]]
) -> list[Move]:
    """The plan's moves, less first appearances that nobody waits for.

    A first appearance "moves" the children parked under the entity while it was unknown. Nearly
    always there are none (every order the demo places is one), and the round after the write that
    found so cost each batch a wait for the store. So the children of the batch's first appearances
    are listed in the same round as the index entries (``waiting``), and a move is dropped when that
    list was empty, the entity had no entry before the batch, and the batch links no child to it.
    A child another process parks between that read and this write is listed in ``parked_entities``,
    and the waiting room's settling round places it (``settle_parked``)."""
    linked = {m.parent for m in plan.mutations if isinstance(m, LinkChild)}
    return [
        move
        for move in plan.moves
        if not (
            waiting.get(move.parent) == [] and known.get(move.parent) is None and move.parent not in linked
        )
    ]


@dataclass(frozen=True)
class Settled:
    """What one settling round of the waiting room did."""

    moved: int
    # (source, table) -> entities still waiting, as far as the scan read (it stops at its limit).
    waiting: dict[tuple[str, str], int]


class ViewWrites(Protocol):
    """What the applier needs of the store's writer (store/writer.py's ViewWriter, or a tap on it)."""

    def apply(self, mutations: Iterable[Mutation]) -> int: ...


class Applier:
    def __init__(
        self,
        writer: ViewWrites,
        index: EntityIndex,
        cache: IndexCache,
        redirects: Redirects | None = None,
        truncations: TruncationLog | None = None,
        intents: SettleIntents | None = None,
    ) -> None:
        self._writer = writer
        # None only in unit tests that do not exercise a process dying between writing and settling.
        self._intents = intents
        # Names the intents this process records (a process that restarts is a new worker).
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._intent_seq = itertools.count()
        self._index = index
        self._cache = cache
        self._redirects = redirects or Redirects()
        # None only in unit tests that do not exercise truncates.
        self._truncation_log = truncations
        # (source, table) -> commit time of its latest removing truncate, as far as this process knows.
        self._truncated: dict[tuple[str, str], int] = {}
        self._truncations_read: set[str] = set()

    @property
    def redirects(self) -> Redirects:
        return self._redirects

    def apply(self, changes: Sequence[Located]) -> list[Outcome]:
        started = time.perf_counter()
        sources = {change.event.source for change in changes}
        if self._truncation_log is not None and sources - self._truncations_read:
            self._learn_truncations(self._truncation_log.of_sources(sources - self._truncations_read))
            self._truncations_read |= sources
        known, to_read = self._cache.split(refs_to_read(changes), trusted_refs(changes))
        held = first_held_keys(changes)
        holders, waiting_on_keys = self._index.owners_and_key_children(keys_to_resolve(changes), held)
        owners = _owner_refs(holders)
        to_read |= {owner for owner in owners.values() if owner is not None and owner not in known}
        read, waiting = self._index.entries_and_children(to_read, first_appearances(changes))
        known.update(read)
        plan = plan_batch(changes, Known(known, owners, self._redirects, self._truncated))
        planned = time.perf_counter()
        BATCH_PHASE.labels("index_read").observe(planned - started)
        self._record_intent(plan)
        self._write(plan.mutations)
        written = time.perf_counter()
        WRITE_LATENCY.observe(written - planned)
        BATCH_PHASE.labels("write").observe(written - planned)
        moves = _moves_that_adopt(plan, known, waiting)
        resolves = _resolves_that_move(plan, known, held, waiting_on_keys)
        if moves or resolves or plan.redirects:
            self._move_children(moves)
            self._resolve_keys(resolves)
            for change in plan.redirects:
                self._redirect(change)
            BATCH_PHASE.labels("moves").observe(time.perf_counter() - written)
        if plan.truncates:
            truncating = time.perf_counter()
            for truncate in plan.truncates:
                self._truncate(truncate)
            BATCH_PHASE.labels("truncates").observe(time.perf_counter() - truncating)
        if any(isinstance(m, PutRow | PutIndex | PutKey) for m in plan.mutations):
            self._undo_rows_older_than_new_truncates(plan.mutations, sources)
        self._cache.learn(plan.index)
        for truncate in plan.truncates:
            self._cache.forget_table(truncate.source, truncate.table)
        return plan.outcomes

    # -- truncates ---------------------------------------------------------------------------------

    def _learn_truncations(self, found: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
        """Remember truncate times; returns the tables whose latest truncate is newer than known."""
        newer = [key for key, ts in found.items() if ts > self._truncated.get(key, 0)]
        for key in newer:
            self._truncated[key] = found[key]
        return newer

    def _undo_rows_older_than_new_truncates(self, written: Sequence[Mutation], sources: set[str]) -> None:
        """Step 5: a truncate applied by another process while this call wrote its rows."""
        if self._truncation_log is None:
            return
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
            elif isinstance(mutation, PutKey):
                owner = (mutation.owner.source, mutation.owner.table)
                if owner in newer and mutation.write_ts < self._truncated[owner]:
                    undo.append(DeleteKey(mutation.key, mutation.owner, self._truncated[owner]))
        for source, table in newer:
            self._cache.forget_table(source, table)
        self._write(undo)

    def _write(self, mutations: Sequence[Mutation]) -> None:
        """Write ``mutations``: the waiting room's listing before its rows, and after their removal.

        A write can be cut between its requests (a killed process), so its rows, index entries and
        listings land or not independently. ``Park`` goes in a round before the rest and ``Unpark`` in
        a round after it: whatever a cut leaves in a waiting room is still listed, and the settling
        round removes it (``settle_parked``). Only writes that park or unpark pay the extra rounds."""
        parks = [m for m in mutations if isinstance(m, Park)]
        unparks = [m for m in mutations if isinstance(m, Unpark)]
        if not parks and not unparks:
            self._writer.apply(mutations)
            return
        rest = [m for m in mutations if not isinstance(m, Park | Unpark)]
        for part in (parks, rest, unparks):
            if part:
                self._writer.apply(part)

    # -- settling again what a move recorded ------------------------------------------------------

    def _record_intent(self, plan: Plan) -> None:
        """Record the settling work ``plan`` needs when neither a replay nor a retry could re-derive
        it: changes of entities already placed (moved, re-keyed, deleted with key values) and merges.
        A first appearance's settling adopts entities listed as parked, which the settling round of
        the waiting room finds."""
        if self._intents is None or not (plan.partitions or plan.redirects):
            return
        merged = {p for c in plan.redirects for p in (c.customer_id, self._redirects.resolve(c.customer_id))}
        merged |= {c.survivor_id for c in plan.redirects if c.survivor_id is not None}
        work = SettleWork(
            partitions=frozenset(plan.partitions),
            entities=frozenset(move.parent for move in plan.moves),
            keys=frozenset(resolve.key for resolve in plan.key_resolves),
            merged=frozenset(merged),
        )
        self._intents.record(self.worker, next(self._intent_seq), work, time.time_ns() // 1000)

    def finish_intents(self, grace_s: float) -> int:
        """Settle again what every process (this one included) recorded more than ``grace_s`` ago,
        then delete the records; returns how many were finished.

        Safe alongside a slow process still doing the same work: every step re-derives its moves from
        the store's current state and writes them at timestamps derived from it."""
        if self._intents is None:
            return 0
        cutoff = time.time_ns() // 1000 - int(grace_s * 1_000_000)
        pending = self._intents.pending(written_before_us=cutoff)
        # Sweeps follow the merges as this process last read them (the replicator re-reads them every
        # redirects_poll_s, and sweeps what changed when it does).
        for intent in pending:
            self._settle(intent.work)
            self._intents.done(intent.worker, intent.seq, intent.written_us)
            log.info(
                "settle_intent_finished",
                worker=intent.worker,
                own=intent.worker == self.worker,
                seq=intent.seq,
                partitions=len(intent.work.partitions),
                entities=len(intent.work.entities),
                keys=len(intent.work.keys),
                merged=len(intent.work.merged),
            )
        return len(pending)

    def _settle(self, work: SettleWork) -> None:
        """Redo a settling step from the store's current state (its moves are idempotent)."""
        if work.merged:
            self._sweep({p for c in work.merged for p in (c, self._redirects.resolve(c))})
        entries = self._index.get_many(work.entities)
        self._move_children(self._follow([e for e in entries.values() if e is not None]))
        self._resolve_keys(set(work.keys))
        self._remove_disowned(work.partitions | work.merged)

    def _remove_disowned(self, partitions: Iterable[str]) -> None:
        """Delete the rows of these partitions whose entity the index places elsewhere: copies a move
        cut between its requests left behind.

        At the index entry's ``owner_ts``, the timestamp of the move that placed the entity elsewhere
        and of the delete that move would have written here; a move back here since is newer, so its
        row is not touched. A row a cut move wrote here while its index entry was lost is as new as
        the entry the redo of that move writes (same inputs, same timestamp), and a delete wins the
        tie. A row without an entry is left alone: it may be an entity's first placement whose entry
        is in flight."""
        wanted = [p for p in dict.fromkeys(partitions) if not is_waiting_room(p)]
        if not wanted:
            return
        found = [row for rows in self._index.partition_rows(wanted).values() for row in rows]
        entries = self._index.get_many(row.key.ref for row in found)
        strays: list[Mutation] = []
        for row in found:
            entry = entries.get(row.key.ref)
            if entry is not None and _row_key(entry) != row.key:
                strays.append(DeleteRow(row.key, entry.owner_ts))
        if strays:
            self._write(strays)
            log.warning("moved_copies_removed", rows=len(strays), first=str(strays[0]))

    def warm_cache(self, tables: Sequence[tuple[str, str]]) -> int:
        """Empty the cache, then load the index entries of these (direct-key) tables into it."""
        self._cache.clear()
        # Lazy: a disabled cache never pulls from the generator, so nothing is read.
        return self._cache.warm(self._index.table_entries(tables))

    # -- merges ----------------------------------------------------------------------------------

    def load_redirects(self, *, sweep: bool = True) -> bool:
        """Re-read the merges from the store (another process may have applied one); sweep the
        partitions a change touches, so rows written there meanwhile still move. True on a change.

        ``sweep=False`` at start-up: the processes that applied the merges swept already."""
        current = self._redirects.as_dict()
        latest = Redirects(self._index.redirects())
        fresh = latest.as_dict()
        changed = {c for c in current.keys() | fresh.keys() if current.get(c) != fresh.get(c)}
        if not changed:
            return False
        before, self._redirects = self._redirects, latest
        if sweep:
            self._sweep({p for c in changed for p in (c, before.resolve(c), latest.resolve(c))})
        return True

    def _redirect(self, change: RedirectChange) -> None:
        customer = change.customer_id
        if change.survivor_id is None:
            mutation: Mutation = DeleteRedirect(customer, change.write_ts)
        else:
            mutation = PutRedirect(customer, change.survivor_id, change.write_ts)
        self._write([mutation])
        before, self._redirects = self._redirects, self._redirects.with_change(change)
        self._sweep({customer, before.resolve(customer), self._redirects.resolve(customer)})

    def _sweep(self, partitions: Iterable[str]) -> None:
        """Move every row of these partitions whose home now resolves elsewhere."""
        wanted = [p for p in dict.fromkeys(partitions) if not is_waiting_room(p)]
        relocations: list[_Relocation] = []
        strays: list[Mutation] = []
        rows = self._index.partition_rows(wanted)
        misplaced = [
            (partition, found)
            for partition, found_rows in rows.items()
            for found in found_rows
            if self._redirects.resolve(found.row.home_id or partition) != partition
        ]
        entries = self._index.get_many(found.key.ref for _partition, found in misplaced)
        for partition, found in misplaced:
            entry = entries.get(found.key.ref)
            if entry is None:
                continue  # a row whose entity left the index: a delete is on its way
            if entry.customer_id != partition:
                # A copy the index disowns (written by a process that had not seen the merge yet).
                strays.append(DeleteRow(found.key, max(found.row.source_ts_us, entry.owner_ts) + 1))
                continue
            home = found.row.home_id or partition
            relocations.append((entry, self._redirects.resolve(home), home))
        if strays:
            self._write(strays)
        self._relocate(relocations)

    # -- settling placements ---------------------------------------------------------------------

    def _owners(self, keys: set[KeyRef]) -> dict[KeyRef, EntityRef | None]:
        return _owner_refs(self._index.key_owners_many(keys)) if keys else {}

    def _move_children(self, moves: Sequence[Move]) -> None:
        """Move the children of every moved parent to its customer, one tree level at a time.

        Each level costs four concurrent rounds (children, their index entries, their rows, the
        writes) whatever the number of parents: an initial snapshot whose cards were consumed before
        their accounts adopts tens of thousands of orphans, and one round trip per parent made that
        drain crawl at ~150 events/s (measured in the benchmark's backlog).
        """
        pending = list(moves)
        for _round in range(_MAX_ROUNDS):
            if not pending:
                return
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
            relocations: list[_Relocation] = []
            for parent, move in latest.items():
                home = move.home_id or move.customer_id
                for child in children[parent]:
                    entry = entries.get(child)
                    # A stale link (the child has another parent now) or a child already there.
                    if entry is None or entry.parent != parent:
                        continue
                    if (entry.customer_id, entry.home) == (move.customer_id, home):
                        continue
                    relocations.append((entry, move.customer_id, home))
            pending = self._follow(self._relocate(relocations))

    def _resolve_keys(self, keys: set[KeyRef]) -> None:
        """Place the rows reached through each key value with its owner's customer, or park them.

        Each round lists the rows first: a value nothing is placed through (most of them) costs one
        read, not the four it took when its owner was read before its rows."""
        for _round in range(_MAX_ROUNDS):
            children = self._index.key_children_many(keys) if keys else {}
            keys = {key for key in keys if children.get(key)}
            if not keys:
                return
            owners = self._owners(keys)
            # The owners' entries and the rows' entries, in one round.
            entries = self._index.get_many(
                [o for o in owners.values() if o is not None] + [c for key in keys for c in children[key]]
            )
            relocations: list[_Relocation] = []
            for key in keys:
                owner = owners.get(key)
                owner_entry = entries.get(owner) if owner is not None else None
                if owner_entry is None:
                    customer = home = orphan_customer_id(key)
                else:
                    customer, home = owner_entry.customer_id, owner_entry.home
                for child in children.get(key, []):
                    entry = entries.get(child)
                    if entry is None or entry.parent != key:
                        continue  # a stale link: the row is placed through another value now
                    if (entry.customer_id, entry.home) != (customer, home):
                        relocations.append((entry, customer, home))
            moved = self._relocate(relocations)
            self._move_children([Move(e.ref, e.customer_id, e.owner_ts, e.home_id) for e in moved])
            keys = {KeyRef(e.ref.source, e.ref.table, name, value) for e in moved for name, value in e.keys}

    def settle_parked(self, tables: Iterable[tuple[str, str]], limit: int = 1000) -> Settled:
        """Re-resolve entities still waiting for their customer (a parent or key owner that arrived
        while their own placement was in flight on another process).

        One scan of the waiting room per table (up to ``limit`` entities) serves both the settling and
        the count of what still waits: every scan reads through the tombstones of the entities parked
        and placed since the store last compacted them (all the children of a backfill whose parents
        came later), so a second scan to count them doubled that cost."""
        waiting: list[EntityRef] = []
        found_per_table: dict[tuple[str, str], int] = {}
        # Every table's scan in one round: the loop waits for the slowest, not for their sum.
        for (source, table), ids in self._index.parked_many(tables, limit).items():
            found_per_table[(source, table)] = len(ids)
            waiting.extend(EntityRef(source, table, entity_id) for entity_id in ids)
        entries = self._index.get_many(waiting)
        parents = {e.parent for e in entries.values() if e is not None and isinstance(e.parent, EntityRef)}
        keys = {e.parent for e in entries.values() if e is not None and isinstance(e.parent, KeyRef)}
        owners = self._owners(keys)
        found = self._index.get_many([*parents, *(o for o in owners.values() if o is not None)])
        relocations: list[_Relocation] = []
        # Listed, yet placed: a copy a cut write left in the waiting room (see _write).
        strays = [
            e for e in entries.values() if e is not None and e.parent and not is_waiting_room(e.customer_id)
        ]
        for entry in entries.values():
            if entry is None or not is_waiting_room(entry.customer_id):
                continue
            parent = entry.parent
            if isinstance(parent, KeyRef):
                owner = owners.get(parent)
                target = found.get(owner) if owner is not None else None
            else:
                target = found.get(parent) if parent is not None else None
            if target is not None and not is_waiting_room(target.customer_id):
                relocations.append((entry, target.customer_id, target.home))
        moved = self._relocate(relocations)
        self._move_children(self._follow(moved))
        self._remove_strays(strays)
        still = dict(found_per_table)
        for entry in [*moved, *strays]:
            still[(entry.ref.source, entry.ref.table)] -= 1
        return Settled(len(moved), still)

    def _remove_strays(self, strays: Sequence[IndexEntry]) -> None:
        """Delete each placed entity's copy in its parent's waiting room, and its listing.

        At the entry's ``owner_ts``: the move that placed it was written there (above the copy's own
        timestamp) or, for a change replayed after a cut parking write, at the copy's timestamp, which a
        delete wins in a tie. A later parking of the entity is newer still, so it is not undone."""
        if not strays:
            return
        mutations: list[Mutation] = []
        for entry in strays:
            assert entry.parent is not None
            waiting = orphan_customer_id(entry.parent)
            mutations.append(DeleteRow(replace(_row_key(entry), customer_id=waiting), entry.owner_ts))
            mutations.append(Unpark(entry.ref, entry.owner_ts))
        self._write(mutations)
        log.warning("parked_strays_removed", entities=len(strays), first=str(strays[0].ref))

    def _follow(self, moved: Sequence[IndexEntry]) -> list[Move]:
        """What moves with the moved entities: their primary-key children (returned, for the caller's
        next level) and the rows placed through their lookup key values (re-resolved here)."""
        keys = {KeyRef(e.ref.source, e.ref.table, name, value) for e in moved for name, value in e.keys}
        if keys:
            self._resolve_keys(keys)
        return [Move(e.ref, e.customer_id, e.owner_ts, e.home_id) for e in moved]

    def _relocate(self, relocations: Sequence[_Relocation]) -> list[IndexEntry]:
        """Move each entity's row and index entry to (partition, home); returns the new entries."""
        moved: list[IndexEntry] = []
        for start in range(0, len(relocations), _MOVE_CHUNK):
            chunk = relocations[start : start + _MOVE_CHUNK]
            rows = self._index.rows_many(_row_key(entry) for entry, _customer, _home in chunk)
            mutations: list[Mutation] = []
            for entry, customer, home in chunk:
                old = _row_key(entry)
                row = rows[old]
                ts = max(entry.owner_ts, row.source_ts_us if row else 0) + 1
                mutations.append(DeleteRow(old, ts))
                if row is not None:
                    new = replace(old, customer_id=customer)
                    mutations.append(
                        PutRow(new, row.attributes, True, ts, row.source_ts_us, home, row.ended_at_us)
                    )
                moved_entry = replace(entry, customer_id=customer, home_id=home, owner_ts=ts)
                mutations.append(PutIndex(moved_entry, ts))
                if is_waiting_room(customer) and not is_waiting_room(entry.customer_id):
                    mutations.append(Park(entry.ref, ts))
                elif is_waiting_room(entry.customer_id) and not is_waiting_room(customer):
                    mutations.append(Unpark(entry.ref, ts))
                moved.append(moved_entry)
            self._write(mutations)
        self._cache.learn({entry.ref: entry for entry in moved})
        return moved

    def _truncate(self, truncate: Truncate) -> None:
        if not truncate.keep and self._truncation_log is not None:
            # Recorded before the index scan: step 5 of every other process relies on that order.
            self._truncation_log.record(truncate.source, truncate.table, truncate.write_ts)
            table = (truncate.source, truncate.table)
            self._truncated[table] = max(self._truncated.get(table, 0), truncate.write_ts)
        mutations: list[Mutation] = []
        released: set[KeyRef] = set()
        for entry in self._index.table_entries([(truncate.source, truncate.table)]):
            if truncate.keep:
                mutations.append(EndRow(_row_key(entry), truncate.write_ts))
            else:
                mutations.append(DeleteRow(_row_key(entry), truncate.write_ts))
                mutations.append(DeleteIndex(entry.ref, truncate.write_ts))
                for name, value in entry.keys:
                    key = KeyRef(entry.ref.source, entry.ref.table, name, value)
                    mutations.append(DeleteKey(key, entry.ref, truncate.write_ts))
                    released.add(key)
                if is_waiting_room(entry.customer_id):
                    mutations.append(Unpark(entry.ref, truncate.write_ts))
            if len(mutations) >= 2000:
                self._write(mutations)
                mutations = []
        self._write(mutations)
        # Rows of other tables placed through the truncated rows' key values now wait for a new owner.
        self._resolve_keys(released)
