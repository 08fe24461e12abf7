"""Settling work a replicator process started, kept in the store so that it is done again later, by
this process or another.

    intents = SettleIntents(session, "scv")
    intents.record(worker, seq, work, ts)      # before the writes that make the work necessary
    intents.pending(written_before_us=...)     # what the settling round does again
    intents.done(worker, seq, ts)              # once done again (same timestamp: a delete wins)

A change that moves an entity already placed (or re-keys it, or merges a customer) is applied in two
steps: its own rows, then what follows from them (the entity's children, the rows placed through its
key values, the merged customer's rows). A process killed between the two, or whose write timed out
half applied, leaves the view half moved, and the replay or retry of its batch sees the entity moved
already, so nothing would redo the second step; and a child another process wrote from the parent's
old entry while the second step ran is not seen by it. The intent names what the second step
re-derives from the store's current state, so doing it again is idempotent, and safe alongside a
process still doing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cassandra.cluster import Session

from store.exceptions import StoreUnavailable
from store.mutations import EntityRef, KeyRef
from store.session import TRANSIENT_ERRORS

__all__ = ["PendingIntent", "SettleIntents", "SettleWork"]


@dataclass(frozen=True)
class SettleWork:
    """What the settling step of one apply call re-derives from the store when it is done again."""

    # Partitions rows moved out of or into: a write cut between its requests can leave a copy in
    # either (the delete lost, or the row written and its index entry lost).
    partitions: frozenset[str] = field(default_factory=frozenset)
    # Entities whose children and key-placed rows follow them to wherever they are now.
    entities: frozenset[EntityRef] = field(default_factory=frozenset)
    # Key values whose rows re-resolve to their current owner.
    keys: frozenset[KeyRef] = field(default_factory=frozenset)
    # Customers a merge (or its undo) concerns: their partitions are swept.
    merged: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> str:
        return json.dumps(
            {
                "partitions": sorted(self.partitions),
                "entities": sorted([r.source, r.table, r.entity_id] for r in self.entities),
                "keys": sorted([k.source, k.table, k.key, k.value] for k in self.keys),
                "merged": sorted(self.merged),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> SettleWork:
        data = json.loads(text)
        return cls(
            frozenset(data.get("partitions", ())),
            frozenset(EntityRef(*ref) for ref in data.get("entities", ())),
            frozenset(KeyRef(*key) for key in data.get("keys", ())),
            frozenset(data.get("merged", ())),
        )


@dataclass(frozen=True)
class PendingIntent:
    worker: str
    seq: int
    work: SettleWork
    written_us: int


class SettleIntents:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._put = session.prepare(
            f"INSERT INTO {keyspace}.settle_intents (worker, seq, work) VALUES (?, ?, ?) USING TIMESTAMP ?"
        )
        self._delete = session.prepare(
            f"DELETE FROM {keyspace}.settle_intents USING TIMESTAMP ? WHERE worker = ? AND seq = ?"
        )
        # A full scan: one partition per process ever started, each holding its unfinished intents
        # (at most a batch's worth; usually none).
        self._scan = session.prepare(
            f"SELECT worker, seq, work, WRITETIME(work) AS written FROM {keyspace}.settle_intents"
        )

    def record(self, worker: str, seq: int, work: SettleWork, ts: int) -> None:
        try:
            self._session.execute(self._put, (worker, seq, work.to_json(), ts))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"recording settling work: {exc}") from exc

    def done(self, worker: str, seq: int, ts: int) -> None:
        try:
            self._session.execute(self._delete, (ts, worker, seq))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"clearing settling work: {exc}") from exc

    def pending(self, written_before_us: int) -> list[PendingIntent]:
        """Intents written before ``written_before_us``."""
        try:
            rows = list(self._session.execute(self._scan))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"reading unfinished settling work: {exc}") from exc
        return [
            PendingIntent(row.worker, int(row.seq), SettleWork.from_json(row.work), int(row.written))
            for row in rows
            if row.written is not None and int(row.written) < written_before_us
        ]
