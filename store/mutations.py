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
    "DeleteRow",
    "EntityRef",
    "IndexEntry",
    "LinkChild",
    "Mutation",
    "PutIndex",
    "PutRow",
    "RowKey",
    "UnlinkChild",
]


@dataclass(frozen=True, slots=True)
class EntityRef:
    """One row of one table of one source, by its entity id."""

    source: str
    table: str
    entity_id: str


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
    customer_id: str
    parent: EntityRef | None
    # Write timestamp of the change that last set customer_id/parent: ownership only moves forward.
    owner_ts: int


@dataclass(frozen=True, slots=True)
class PutRow:
    key: RowKey
    attributes: Mapping[str, AttributeValue]
    # True when `attributes` is the complete after-image: columns absent from it (dropped columns)
    # are removed. False when some columns were unavailable (unchanged TOAST): merge, never erase.
    replace: bool
    write_ts: int
    source_ts_us: int


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


Mutation: TypeAlias = PutRow | DeleteRow | PutIndex | DeleteIndex | LinkChild | UnlinkChild
