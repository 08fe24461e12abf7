"""The writes the store accepts, as plain data: what to put or delete, and at which write timestamp.

The replicator decides *what* (consumer/planner.py); the store decides *how* (store/writer.py).
Every mutation carries ``write_ts`` (microseconds, the CQL write timestamp), which is what makes
redelivery, replays and parallel writers converge: the newest source change wins cell by cell,
whatever order the writes arrive in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from scv.contracts.cells import AttributeValue

__all__ = [
    "DeleteIndex",
    "DeleteKey",
    "DeleteRedirect",
    "DeleteRow",
    "EndRow",
    "EntityRef",
    "IndexEntry",
    "KeyRef",
    "LinkChild",
    "LinkKeyChild",
    "Mutation",
    "Parent",
    "Park",
    "PutIndex",
    "PutKey",
    "PutRedirect",
    "PutRow",
    "RowKey",
    "UnlinkChild",
    "UnlinkKeyChild",
    "Unpark",
]


@dataclass(frozen=True, slots=True)
class EntityRef:
    """One row of one table of one source, by its entity id."""

    source: str
    table: str
    entity_id: str


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A value of a lookup key of a table (``key`` names it), normalised by the key's rule: what a
    cross-source ``via`` resolves through (e.g. crm's customers by fiscal code)."""

    source: str
    table: str
    key: str
    value: str


# What an entity hangs off: another entity by its primary key (same source), or a lookup key value.
Parent: TypeAlias = EntityRef | KeyRef


@dataclass(frozen=True, slots=True)
class RowKey:
    """Where an entity lives in the view: the customer's partition, then (kind, source, table, id)."""

    customer_id: str
    kind: str
    source: str
    table: str
    entity_id: str

    @property
    def ref(self) -> EntityRef:
        return EntityRef(self.source, self.table, self.entity_id)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    ref: EntityRef
    kind: str
    # The partition the entity lives in: its home customer, or the survivor of a merge of it.
    customer_id: str
    parent: EntityRef | KeyRef | None
    # Write timestamp of the change that last set customer_id/parent: ownership only moves forward.
    owner_ts: int
    # The customer the entity's own keys name (before merges); None for entries written before it
    # existed, which read as their partition.
    home_id: str | None = None
    # The entity's lookup key values (name, normalised value), as last applied: what to unindex when
    # they change.
    keys: tuple[tuple[str, str], ...] = ()

    @property
    def home(self) -> str:
        return self.home_id or self.customer_id


@dataclass(frozen=True, slots=True)
class PutRow:
    key: RowKey
    attributes: Mapping[str, AttributeValue]
    # True when `attributes` is the complete after-image: columns absent from it (dropped columns)
    # are removed. False when some columns were unavailable (unchanged TOAST): merge, never erase.
    replace: bool
    write_ts: int
    source_ts_us: int
    # The customer the entity's keys name (the partition unless merged); None: the partition.
    home_id: str | None = None
    # Ended at the source (on_delete: keep) — written on every put, so a re-insert clears it.
    ended_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class EndRow:
    """The entity was deleted at the source and its table keeps history: mark it ended, keep it."""

    key: RowKey
    write_ts: int


@dataclass(frozen=True, slots=True)
class DeleteRow:
    key: RowKey
    write_ts: int


@dataclass(frozen=True, slots=True)
class PutIndex:
    entry: IndexEntry
    write_ts: int


@dataclass(frozen=True, slots=True)
class DeleteIndex:
    ref: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class LinkChild:
    parent: EntityRef
    child: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class UnlinkChild:
    parent: EntityRef
    child: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class PutKey:
    """``owner`` holds ``key``'s value (lookup-key index)."""

    key: KeyRef
    owner: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class DeleteKey:
    key: KeyRef
    owner: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class LinkKeyChild:
    """``child`` is placed through ``key``: it moves when the key's owner (or customer) changes."""

    key: KeyRef
    child: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class UnlinkKeyChild:
    key: KeyRef
    child: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class PutRedirect:
    """Customer ``customer_id`` was merged into ``survivor_id``: its view is read from there."""

    customer_id: str
    survivor_id: str
    write_ts: int


@dataclass(frozen=True, slots=True)
class DeleteRedirect:
    customer_id: str
    write_ts: int


@dataclass(frozen=True, slots=True)
class Park:
    """``ref`` waits for the entity or key its customer is found through (it is not yet known)."""

    ref: EntityRef
    write_ts: int


@dataclass(frozen=True, slots=True)
class Unpark:
    ref: EntityRef
    write_ts: int


Mutation: TypeAlias = (
    PutRow
    | DeleteRow
    | EndRow
    | PutIndex
    | DeleteIndex
    | LinkChild
    | UnlinkChild
    | PutKey
    | DeleteKey
    | LinkKeyChild
    | UnlinkKeyChild
    | PutRedirect
    | DeleteRedirect
    | Park
    | Unpark
)
