"""Turn a batch of placed changes into store mutations: the merge rules, as a pure function.

    plan = plan_batch(changes, known)   # known: entity -> index entry (None = never seen)

Rules (each tested by name in tests/unit/test_planner.py):
- Every row write carries the change's write timestamp (envelope.py), so replays converge.
- A complete after-image replaces the row's attributes (dropped columns disappear); an image with
  unavailable (unchanged TOAST) columns merges, so the placeholder never overwrites a stored value.
- Ownership only moves forward: the index changes only for a change at least as new as the one
  that set the current owner. An older (replayed) change still writes its cells — LWW shadows them.
- An entity whose customer changes leaves the old partition (delete at the same timestamp) and its
  children (entities resolved through it, e.g. the cards of an account) follow: a ``Move``.
- A child whose parent is unknown waits in the parent's orphan partition; the parent's first
  appearance moves it out (a ``Move`` too).
- A delete finds the row through the index, since the before-image may hold only the key.
- A truncate removes every entity of the table written before it (a ``Truncate``), and a row change
  older than the table's latest truncate is refused (outcome ``before_truncate``): it may still wait
  in another partition, or another process, when the truncate is applied, and must not resurrect a
  truncated row (the truncate's time is remembered in the store: consumer/applier.py).
- Several changes to one row within the batch at the same timestamp (one transaction) collapse to
  the last, because CQL breaks timestamp ties by value, not by arrival.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from consumer.envelope import ChangeEvent
from consumer.mapping import Placement, orphan_customer_id
from scv.contracts.registration import TableMapping
from store.mutations import (
    DeleteIndex,
    DeleteRow,
    EntityRef,
    IndexEntry,
    LinkChild,
    Mutation,
    PutIndex,
    PutRow,
    RowKey,
    UnlinkChild,
)

__all__ = [
    "Located",
    "Move",
    "Outcome",
    "Plan",
    "Truncate",
    "collapse",
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
    """Move every child of ``parent`` (recursively) to ``customer_id``, at ``write_ts`` or later."""

    parent: EntityRef
    customer_id: str
    write_ts: int


@dataclass(frozen=True, slots=True)
class Truncate:
    source: str
    table: str
    write_ts: int


@dataclass
class Plan:
    mutations: list[Mutation] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    truncates: list[Truncate] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    # The index as it stands once the mutations are written: every entry the batch read or set.
    index: dict[EntityRef, IndexEntry | None] = field(default_factory=dict)


def refs_to_read(changes: Sequence[Located]) -> set[EntityRef]:
    """The index entries the planner needs. A create of a childless table needs none: the entity is
    new, and if it is a replay its index write loses to the newer one under LWW anyway."""
    refs: set[EntityRef] = set()
    for change in changes:
        placement = change.placement
        if placement is None:
            continue
        if change.event.op != "c" or change.table.children or change.table.is_via:
            refs.add(placement.ref)
        if placement.parent is not None:
            refs.add(placement.parent)
    return refs


def trusted_refs(changes: Sequence[Located]) -> set[EntityRef]:
    """Entities whose cached index entry may stand in for a read (consumer/index_cache.py says why):
    direct-key entities whose every change in the batch is an update or a delete."""
    trusted: set[EntityRef] = set()
    untrusted: set[EntityRef] = set()
    for change in changes:
        placement = change.placement
        if placement is None:
            continue
        if change.event.op in ("u", "d") and placement.parent is None:
            trusted.add(placement.ref)
        else:
            untrusted.add(placement.ref)
    return trusted - untrusted


def _row_key(entry: IndexEntry) -> RowKey:
    return RowKey(entry.customer_id, entry.kind, entry.ref.source, entry.ref.table, entry.ref.entity_id)


def plan_batch(
    changes: Sequence[Located],
    known: dict[EntityRef, IndexEntry | None],
    truncated: Mapping[tuple[str, str], int] | None = None,
) -> Plan:
    """``truncated``: (source, table) -> commit time of the table's latest truncate known so far."""
    known = dict(known)
    truncated = dict(truncated or {})
    plan = Plan()
    for change in changes:
        event, table, placement = change.event, change.table, change.placement
        if event.op == "t" or placement is None:
            plan.truncates.append(Truncate(event.source, event.table, event.write_ts))
            for ref in [r for r in known if r.source == event.source and r.table == event.table]:
                known[ref] = None
            key = (event.source, event.table)
            truncated[key] = max(truncated.get(key, 0), event.write_ts)
            plan.outcomes.append("truncated")
        elif event.write_ts < truncated.get((event.source, event.table), 0):
            plan.outcomes.append("before_truncate")
        elif event.op == "d":
            plan.outcomes.append(_plan_delete(placement, event.write_ts, known, plan))
        elif placement.outside_view:
            _plan_delete(placement, event.write_ts, known, plan)
            plan.outcomes.append("skipped")
        else:
            _plan_upsert(event, table, placement, known, plan)
            plan.outcomes.append("applied")
    plan.mutations = collapse(plan.mutations)
    plan.index = known
    return plan


def _plan_delete(
    placement: Placement, ts: int, known: dict[EntityRef, IndexEntry | None], plan: Plan
) -> Outcome:
    ref = placement.ref
    current = known.get(ref)
    if current is None:
        return "unknown_delete"
    plan.mutations.append(DeleteRow(_row_key(current), ts))
    if ts >= current.owner_ts:
        plan.mutations.append(DeleteIndex(ref, ts))
        if current.parent is not None:
            plan.mutations.append(UnlinkChild(current.parent, ref, ts))
        known[ref] = None
    return "applied"


def _plan_upsert(
    event: ChangeEvent,
    table: TableMapping,
    placement: Placement,
    known: dict[EntityRef, IndexEntry | None],
    plan: Plan,
) -> None:
    ts = event.write_ts
    ref, parent = placement.ref, placement.parent
    if parent is not None:
        parent_entry = known.get(parent)
        customer = parent_entry.customer_id if parent_entry else orphan_customer_id(parent)
    else:
        assert placement.customer_id is not None
        customer = placement.customer_id
    key = RowKey(customer, table.kind, ref.source, ref.table, ref.entity_id)
    assert event.after is not None
    plan.mutations.append(
        PutRow(key, event.after, replace=not event.unavailable, write_ts=ts, source_ts_us=ts)
    )

    current = known.get(ref)
    if current is not None and ts < current.owner_ts:
        return  # an older change replayed: its cells lose under LWW, ownership must not regress
    if current is not None and (current.customer_id, current.kind) != (customer, table.kind):
        plan.mutations.append(DeleteRow(_row_key(current), ts))
    if table.children and (current is None or current.customer_id != customer):
        plan.moves.append(Move(ref, customer, ts))
    current_parent = current.parent if current is not None else None
    if current_parent != parent:
        if current_parent is not None:
            plan.mutations.append(UnlinkChild(current_parent, ref, ts))
        if parent is not None:
            plan.mutations.append(LinkChild(parent, ref, ts))
    entry = IndexEntry(ref, table.kind, customer, parent, owner_ts=ts)
    if current is None or replace(current, owner_ts=ts) != entry:
        plan.mutations.append(PutIndex(entry, ts))
        known[ref] = entry


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
