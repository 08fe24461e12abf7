"""Turn a batch of placed changes into store mutations: the merge rules, as a pure function.

    plan = plan_batch(changes, Known(entries, key_owners, redirects))

Rules (each tested by name in tests/unit/test_planner.py and tests/unit/test_identity.py):
- Every row write carries the change's write timestamp (envelope.py), so replays converge.
- A complete after-image replaces the row's attributes (dropped columns disappear); an image with
  unavailable (unchanged TOAST) columns merges, so the placeholder never overwrites a stored value.
- Ownership only moves forward: the index changes only for a change at least as new as the one
  that set the current owner. An older (replayed) change still writes its cells — LWW shadows them.
- An entity whose customer changes leaves the old partition (delete at the same timestamp) and its
  children (entities resolved through it, e.g. the cards of an account) follow: a ``Move``.
- A child whose parent is unknown waits in the parent's orphan partition (and is listed as parked);
  the parent's first appearance moves it out (a ``Move`` too).
- Cross-source identity: a row reached through a lookup key value (e.g. a contact-center
  interaction keyed by fiscal code) lives with the customer of the row holding that value (the
  smallest entity id when several do), or waits parked until one appears. Whenever a key value
  changes owner, or its owner changes customer, its rows are re-resolved: a ``KeyResolve``.
- Merges: a customer row naming a survivor (its ``merge_into`` column) redirects its customer there:
  a ``RedirectChange``; the applier moves the rows whose home is the absorbed customer, and moves
  them back on an undo. Every row keeps its home (the customer its own keys name).
- A delete finds the row through the index, since the before-image may hold only the key. Tables
  with ``on_delete: keep`` mark the entity ended instead of removing it.
- A truncate removes (or, with ``keep``, ends) every entity of the table written before it, and a row
  change older than the table's latest (removing) truncate is refused (outcome ``before_truncate``):
  it may still wait in another partition, or another process, when the truncate is applied, and must
  not resurrect a truncated row (the truncate's time is remembered in the store: consumer/applier.py).
- Several changes to one row within the batch at the same timestamp (one transaction) collapse to
  the last, because CQL breaks timestamp ties by value, not by arrival.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from consumer.envelope import ChangeEvent
from consumer.mapping import Placement, is_waiting_room, orphan_customer_id
from scv.contracts.registration import TableMapping
from store.mutations import (
    DeleteIndex,
    DeleteKey,
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
    PutRow,
    RowKey,
    UnlinkChild,
    UnlinkKeyChild,
    Unpark,
)

__all__ = [
    "KeyResolve",
    "Known",
    "Located",
    "Move",
    "Outcome",
    "Plan",
    "RedirectChange",
    "Redirects",
    "Truncate",
    "collapse",
    "first_appearances",
    "first_held_keys",
    "keys_to_resolve",
    "plan_batch",
    "refs_to_read",
    "trusted_refs",
]

Outcome = Literal["applied", "skipped", "unknown_delete", "truncated", "before_truncate"]


@dataclass(frozen=True, slots=True)
class Located:
    event: ChangeEvent
    table: TableMapping
    placement: Placement | None  # None for truncates


@dataclass(frozen=True, slots=True)
class Move:
    """Move every child of ``parent`` (recursively) to ``customer_id``, their home becoming ``home_id``."""

    parent: EntityRef
    customer_id: str
    write_ts: int
    home_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeyResolve:
    """Re-resolve the rows placed through ``key``: its owner (or the owner's customer) changed."""

    key: KeyRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class RedirectChange:
    """``customer_id`` is merged into ``survivor_id`` from ``write_ts`` on (None: the merge is undone)."""

    customer_id: str
    survivor_id: str | None
    write_ts: int


@dataclass(frozen=True, slots=True)
class Truncate:
    source: str
    table: str
    write_ts: int
    keep: bool = False


class Redirects:
    """Merged customers -> their survivors, followed to the end of a chain (A -> B -> C reads C)."""

    # Bounds a chain (and a cycle written by hand in the source: A -> B -> A stops at the bound).
    _MAX_HOPS = 16

    def __init__(self, survivors: Mapping[str, str] | None = None) -> None:
        self._survivors = dict(survivors or {})

    def survivor_of(self, customer_id: str) -> str | None:
        """The direct survivor of ``customer_id`` (None when it is not merged)."""
        return self._survivors.get(customer_id)

    def resolve(self, customer_id: str) -> str:
        current = customer_id
        for _ in range(self._MAX_HOPS):
            survivor = self._survivors.get(current)
            if survivor is None or survivor == current:
                return current
            current = survivor
        return current

    def with_change(self, change: RedirectChange) -> Redirects:
        survivors = dict(self._survivors)
        if change.survivor_id is None:
            survivors.pop(change.customer_id, None)
        else:
            survivors[change.customer_id] = change.survivor_id
        return Redirects(survivors)

    def as_dict(self) -> dict[str, str]:
        return dict(self._survivors)

    def __len__(self) -> int:
        return len(self._survivors)


@dataclass
class Known:
    """What the store says before the batch: index entries, the owners of the key values the batch
    needs (the smallest entity id holding each; None when nobody does), and the merges."""

    entries: dict[EntityRef, IndexEntry | None] = field(default_factory=dict)
    key_owners: dict[KeyRef, EntityRef | None] = field(default_factory=dict)
    redirects: Redirects = field(default_factory=Redirects)
    # (source, table) -> commit time of the table's latest removing truncate known so far.
    truncated: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Plan:
    mutations: list[Mutation] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    key_resolves: list[KeyResolve] = field(default_factory=list)
    redirects: list[RedirectChange] = field(default_factory=list)
    truncates: list[Truncate] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    # Customer partitions rows move out of or into, in the batch or its settling step (a moved
    # entity's partitions before and after, a re-keyed one's, a key value's previous holder's): the
    # applier records them before writing (store/intents.py).
    partitions: set[str] = field(default_factory=set)
    # The index as it stands once the mutations are written: every entry the batch read or set.
    index: dict[EntityRef, IndexEntry | None] = field(default_factory=dict)


def refs_to_read(changes: Sequence[Located]) -> set[EntityRef]:
    """The index entries the planner needs (owners of lookup keys come from ``keys_to_resolve``). A
    create of a childless table without lookup keys needs none: the entity is new, and if it is a
    replay its index write loses to the newer one under LWW anyway."""
    refs: set[EntityRef] = set()
    for change in changes:
        placement = change.placement
        if placement is None:
            continue
        table = change.table
        if change.event.op != "c" or table.children or table.is_via or table.keys or table.merge_into:
            refs.add(placement.ref)
        if isinstance(placement.parent, EntityRef):
            refs.add(placement.parent)
    return refs


def keys_to_resolve(changes: Sequence[Located]) -> set[KeyRef]:
    """The lookup key values whose owner the batch needs: those that place a change of the batch, and
    those an upsert holds (it may take the value over from another holder, whose customer the rows
    placed through the value then leave: the settling work recorded for them names it)."""
    keys: set[KeyRef] = set()
    for change in changes:
        placement = change.placement
        if placement is None:
            continue
        if isinstance(placement.parent, KeyRef):
            keys.add(placement.parent)
        if placement.keys and change.event.op != "d" and not placement.outside_view:
            ref = placement.ref
            keys.update(KeyRef(ref.source, ref.table, name, value) for name, value in placement.keys)
    return keys


def first_appearances(changes: Sequence[Located]) -> set[EntityRef]:
    """Entities with children created (or read by a snapshot) in the batch: a first appearance
    adopts the children that waited for it, so the applier lists their children in the same round
    as the index entries instead of in a round of its own after the write (consumer/applier.py)."""
    return {
        change.placement.ref
        for change in changes
        if change.placement is not None and change.table.children and change.event.op in ("c", "r")
    }


def first_held_keys(changes: Sequence[Located]) -> dict[KeyRef, EntityRef]:
    """The lookup key values held by entities created (or read by a snapshot) in the batch, with
    their holder: a first appearance re-resolves the rows that waited for its values, so the applier
    lists those rows in its first read instead of in rounds of their own after the write."""
    held: dict[KeyRef, EntityRef] = {}
    for change in changes:
        placement = change.placement
        if placement is None or not placement.keys or change.event.op not in ("c", "r"):
            continue
        ref = placement.ref
        for name, value in placement.keys:
            held[KeyRef(ref.source, ref.table, name, value)] = ref
    return held


def trusted_refs(changes: Sequence[Located]) -> set[EntityRef]:
    """Entities whose cached index entry may stand in for a read (consumer/index_cache.py says why):
    direct-key entities whose every change in the batch is an update.

    The table says what is direct-key, not the placement: neither a delete (its before-image may hold
    only the key) nor a via row leaving the view (its parent column set to NULL) has a parent in its
    placement, yet another process moves cards and interactions (their parent's, or their key
    owner's). Planned on such a stale entry, the removal missed the row where it had moved, and that
    row stayed in the view for good. Deletes of direct-key entities read the store too: a merge
    applied by another process moves those, and while an update planned on a stale entry heals (the
    merge's sweep rewrites it), a delete does not. Deletes are few."""
    trusted: set[EntityRef] = set()
    untrusted: set[EntityRef] = set()
    for change in changes:
        placement = change.placement
        if placement is None:
            continue
        if change.event.op == "u" and not change.table.is_via:
            trusted.add(placement.ref)
        else:
            untrusted.add(placement.ref)
    return trusted - untrusted


def _row_key(entry: IndexEntry) -> RowKey:
    return RowKey(entry.customer_id, entry.kind, entry.ref.source, entry.ref.table, entry.ref.entity_id)


class _Batch:
    """The planner's working state: what the index will say after each change of the batch."""

    def __init__(self, known: Known) -> None:
        self.entries = dict(known.entries)
        self.key_owners = dict(known.key_owners)
        self.redirects = known.redirects
        self.plan = Plan()
        self._resolving: set[KeyRef] = set()

    def resolve_key(self, key: KeyRef, ts: int) -> None:
        if key not in self._resolving:
            self._resolving.add(key)
            self.plan.key_resolves.append(KeyResolve(key, ts))

    def touch(self, *partitions: str) -> None:
        # A waiting room's copies are listed as parked, and the settling round removes them.
        self.plan.partitions.update(p for p in partitions if not is_waiting_room(p))

    def owner_changed(self, key: KeyRef, owner: EntityRef, holds: bool) -> None:
        """Keep the batch's view of a key's owner: the smallest entity id holding it."""
        current = self.key_owners.get(key)
        if holds and (current is None or owner.entity_id < current.entity_id):
            self.key_owners[key] = owner
        elif not holds and current == owner:
            # Another row may still hold the value: the KeyResolve after the writes decides.
            self.key_owners[key] = None


def plan_batch(changes: Sequence[Located], known: Known | dict[EntityRef, IndexEntry | None]) -> Plan:
    known = known if isinstance(known, Known) else Known(entries=dict(known))
    batch = _Batch(known)
    truncated = dict(known.truncated)
    plan = batch.plan
    for change in changes:
        event, table, placement = change.event, change.table, change.placement
        if event.op == "t" or placement is None:
            keep = table.on_delete == "keep"
            plan.truncates.append(Truncate(event.source, event.table, event.write_ts, keep))
            if not keep:
                for ref in [r for r in batch.entries if r.source == event.source and r.table == event.table]:
                    batch.entries[ref] = None
                key = (event.source, event.table)
                truncated[key] = max(truncated.get(key, 0), event.write_ts)
            plan.outcomes.append("truncated")
        elif event.write_ts < truncated.get((event.source, event.table), 0):
            plan.outcomes.append("before_truncate")
        elif event.op == "d":
            plan.outcomes.append(_plan_delete(placement, event.write_ts, table.on_delete == "keep", batch))
        elif placement.outside_view:
            _plan_delete(placement, event.write_ts, False, batch)
            plan.outcomes.append("skipped")
        else:
            _plan_upsert(event, table, placement, batch)
            plan.outcomes.append("applied")
    plan.mutations = collapse(plan.mutations)
    plan.index = batch.entries
    return plan


def _unlink(parent: EntityRef | KeyRef, ref: EntityRef, ts: int) -> Mutation:
    if isinstance(parent, KeyRef):
        return UnlinkKeyChild(parent, ref, ts)
    return UnlinkChild(parent, ref, ts)


def _link(parent: EntityRef | KeyRef, ref: EntityRef, ts: int) -> Mutation:
    if isinstance(parent, KeyRef):
        return LinkKeyChild(parent, ref, ts)
    return LinkChild(parent, ref, ts)


def _plan_delete(placement: Placement, ts: int, keep: bool, batch: _Batch) -> Outcome:
    ref = placement.ref
    current = batch.entries.get(ref)
    if current is None:
        return "unknown_delete"
    mutations = batch.plan.mutations
    if keep:
        # History: the row stays readable, marked ended; the index, links and keys stay too, so the
        # entity still follows its customer (merges, re-keyed parents).
        mutations.append(EndRow(_row_key(current), ts))
        return "applied"
    mutations.append(DeleteRow(_row_key(current), ts))
    if ts >= current.owner_ts:
        mutations.append(DeleteIndex(ref, ts))
        if current.parent is not None:
            mutations.append(_unlink(current.parent, ref, ts))
        for name, value in current.keys:
            key = KeyRef(ref.source, ref.table, name, value)
            batch.touch(current.customer_id)
            mutations.append(DeleteKey(key, ref, ts))
            batch.owner_changed(key, ref, holds=False)
            batch.resolve_key(key, ts)
        if is_waiting_room(current.customer_id):
            mutations.append(Unpark(ref, ts))
        batch.entries[ref] = None
    return "applied"


def _customer_of(placement: Placement, batch: _Batch) -> tuple[str, str]:
    """(partition, home) of an upsert: through its parent or key owner, or its own (merged) key."""
    parent = placement.parent
    if isinstance(parent, EntityRef):
        entry = batch.entries.get(parent)
    elif isinstance(parent, KeyRef):
        owner = batch.key_owners.get(parent)
        entry = batch.entries.get(owner) if owner is not None else None
    else:
        assert placement.customer_id is not None
        home = placement.customer_id
        return batch.redirects.resolve(home), home
    if entry is None:
        assert parent is not None
        waiting = orphan_customer_id(parent)
        return waiting, waiting
    return entry.customer_id, entry.home


def _plan_upsert(event: ChangeEvent, table: TableMapping, placement: Placement, batch: _Batch) -> None:
    ts = event.write_ts
    ref, parent = placement.ref, placement.parent
    plan, mutations = batch.plan, batch.plan.mutations
    customer, home = _customer_of(placement, batch)
    key = RowKey(customer, table.kind, ref.source, ref.table, ref.entity_id)
    assert event.after is not None
    mutations.append(
        PutRow(key, event.after, replace=not event.unavailable, write_ts=ts, source_ts_us=ts, home_id=home)
    )
    current = batch.entries.get(ref)
    if current is not None and ts < current.owner_ts:
        return  # an older change replayed: its cells lose under LWW, ownership must not regress
    if placement.merges:
        # The customer row itself says whether its customer is merged into another.
        survivor = placement.merged_into if placement.merged_into != home else None
        if survivor != batch.redirects.survivor_of(home):
            change = RedirectChange(home, survivor, ts)
            plan.redirects.append(change)
            batch.redirects = batch.redirects.with_change(change)
    if current is not None and (current.customer_id, current.kind) != (customer, table.kind):
        mutations.append(DeleteRow(_row_key(current), ts))
        batch.touch(current.customer_id, customer)
    moved = current is None or current.customer_id != customer
    if table.children and moved:
        plan.moves.append(Move(ref, customer, ts, home))
    keys = placement.keys if placement.keys is not None else (current.keys if current else ())
    _plan_keys(ref, current, keys, moved, ts, batch)
    current_parent = current.parent if current is not None else None
    if current_parent != parent:
        if current_parent is not None:
            mutations.append(_unlink(current_parent, ref, ts))
        if parent is not None:
            mutations.append(_link(parent, ref, ts))
    was_waiting = current is not None and is_waiting_room(current.customer_id)
    if is_waiting_room(customer) and not was_waiting:
        mutations.append(Park(ref, ts))
    elif was_waiting and not is_waiting_room(customer):
        mutations.append(Unpark(ref, ts))
    entry = IndexEntry(ref, table.kind, customer, parent, owner_ts=ts, home_id=home, keys=keys)
    # An entry written before homes existed reads as home = its partition: not a change by itself.
    if current is None or replace(current, owner_ts=ts, home_id=current.home) != entry:
        mutations.append(PutIndex(entry, ts))
        batch.entries[ref] = entry


def _plan_keys(
    ref: EntityRef,
    current: IndexEntry | None,
    keys: tuple[tuple[str, str], ...],
    moved: bool,
    ts: int,
    batch: _Batch,
) -> None:
    """Index the row's lookup key values; re-resolve the rows placed through every value that changed
    owner, and through all of them when the row itself changed customer."""
    old = dict(current.keys) if current is not None else {}
    new = dict(keys)
    mutations = batch.plan.mutations
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            if moved and after is not None:
                batch.resolve_key(KeyRef(ref.source, ref.table, name, after), ts)
            continue
        if current is not None:
            # Rows placed through the value it held may move to another owner's customer.
            batch.touch(current.customer_id)
        if before is not None:
            gone = KeyRef(ref.source, ref.table, name, before)
            mutations.append(DeleteKey(gone, ref, ts))
            batch.owner_changed(gone, ref, holds=False)
            batch.resolve_key(gone, ts)
        if after is not None:
            held = KeyRef(ref.source, ref.table, name, after)
            holder = batch.key_owners.get(held)
            if holder is not None and holder != ref and ref.entity_id < holder.entity_id:
                # Taken over: the rows placed through the value leave the holder's customer.
                taken_from = batch.entries.get(holder)
                if taken_from is not None:
                    batch.touch(taken_from.customer_id)
            mutations.append(PutKey(held, ref, ts))
            batch.owner_changed(held, ref, holds=True)
            batch.resolve_key(held, ts)


def collapse(mutations: list[Mutation]) -> list[Mutation]:
    """Keep only the last row write per row key among those sharing one timestamp."""
    last_at: dict[tuple[RowKey, int], int] = {}
    for position, mutation in enumerate(mutations):
        if isinstance(mutation, PutRow | DeleteRow):
            last_at[(mutation.key, mutation.write_ts)] = position
    kept: list[Mutation] = []
    merged: dict[int, PutRow] = {}
    for position, mutation in enumerate(mutations):
        if isinstance(mutation, PutRow | DeleteRow):
            last = last_at[(mutation.key, mutation.write_ts)]
            if position != last:
                # A partial image that follows a complete one in the same transaction merges into it.
                later = mutations[last]
                if isinstance(mutation, PutRow) and isinstance(later, PutRow) and not later.replace:
                    merged[last] = replace(
                        later,
                        attributes={**mutation.attributes, **later.attributes},
                        replace=mutation.replace,
                    )
                continue
            kept.append(merged.get(position, mutation))
        else:
            kept.append(mutation)
    return kept
