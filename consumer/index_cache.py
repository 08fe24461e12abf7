"""What this process knows of the entity index, so an update of a known entity needs no index read.

    cache = IndexCache(capacity=300_000)
    known, to_read = cache.split(refs_to_read(changes), trusted_refs(changes))
    known |= index.get_many(to_read)
    ...apply the plan...
    cache.learn(plan.index)

An index read costs the store a partition read per entity (~0.1-0.3 ms of Cassandra CPU on the
local stack, more than the write it precedes), and nearly every change is an update of an entity
the replicator has already seen. Why a cached entry can stand in for a read:

- Only the process consuming an entity's topic partition writes its index entry (Debezium keys
  records by primary key), with two exceptions: a parent's process moves the entity when it hangs
  off a parent (cards of an account), and a truncate of its table deletes it.
- So only changes of *direct-key* entities (the customer key is one of their own columns) are
  trusted, and only updates: a truncate empties the source table, so an entity's next change after
  one is a create or a snapshot read, and those always read the index, which refills the entry.
  Parents and entities resolved through parents are always read, and so is every delete, whose
  image cannot say whether the entity hangs off a parent (planner.trusted_refs).
- The cache is emptied whenever this process's partition assignment changes (another process may
  have written the entities meanwhile) and whenever the registrations change. ``warm`` then loads the
  direct-key tables' entries once, before the next batch, so a restarted replicator does not pay a
  read per entity until it has seen each one again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from consumer.metrics import INDEX_CACHE, INDEX_CACHE_ENTRIES
from store.mutations import EntityRef, IndexEntry, KeyRef

__all__ = ["IndexCache"]

# Entries are kept as tuples of str/int/None, not as EntityRef/IndexEntry objects. CPython stops
# tracking such tuples in its cyclic garbage collector, while every dataclass instance stays tracked:
# with 300k entries (~1M objects) a full collection walked them all every few seconds under the
# demo workload (178 full collections in 13 minutes), each a pause of the replicator's loop.
_Key = tuple[str, str, str]  # source, table, entity_id
# kind, customer, parent (source, table, key, id: key None for a primary-key parent), owner_ts, home, keys
_Value = (
    tuple[
        str,
        str,
        str | None,
        str | None,
        str | None,
        str | None,
        int,
        str | None,
        tuple[tuple[str, str], ...],
    ]
    | None
)


def _key(ref: EntityRef) -> _Key:
    return (ref.source, ref.table, ref.entity_id)


def _value(entry: IndexEntry | None) -> _Value:
    if entry is None:
        return None
    parent = entry.parent
    parent_fields: tuple[str | None, str | None, str | None, str | None]
    if isinstance(parent, KeyRef):
        parent_fields = (parent.source, parent.table, parent.key, parent.value)
    elif parent is not None:
        parent_fields = (None, parent.table, None, parent.entity_id)
    else:
        parent_fields = (None, None, None, None)
    return (entry.kind, entry.customer_id, *parent_fields, entry.owner_ts, entry.home_id, entry.keys)


def _entry(ref: EntityRef, value: _Value) -> IndexEntry | None:
    if value is None:
        return None
    kind, customer_id, parent_source, parent_table, parent_key, parent_id, owner_ts, home_id, keys = value
    parent: EntityRef | KeyRef | None = None
    if parent_key and parent_table and parent_id is not None:
        parent = KeyRef(parent_source or ref.source, parent_table, parent_key, parent_id)
    elif parent_table and parent_id:
        parent = EntityRef(ref.source, parent_table, parent_id)
    return IndexEntry(ref, kind, customer_id, parent, owner_ts, home_id, keys)


class IndexCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # An OrderedDict in recency order is the LRU: one hash entry per key, against three for
        # cachetools' LRUCache.
        self._entries: OrderedDict[_Key, _Value] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def __len__(self) -> int:
        return len(self._entries)

    def split(
        self, needed: Iterable[EntityRef], trusted: set[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], set[EntityRef]]:
        """Entries answered from the cache, and the refs that must still be read from the index."""
        known: dict[EntityRef, IndexEntry | None] = {}
        to_read: set[EntityRef] = set()
        hits = misses = 0
        entries = self._entries
        for ref in needed:
            key = _key(ref)
            if self.enabled and ref in trusted and key in entries:
                entries.move_to_end(key)
                known[ref] = _entry(ref, entries[key])
                hits += 1
            else:
                to_read.add(ref)
                misses += ref in trusted
        if hits:
            INDEX_CACHE.labels("hit").inc(hits)
        if misses:
            INDEX_CACHE.labels("miss").inc(misses)
        return known, to_read

    def learn(self, entries: Mapping[EntityRef, IndexEntry | None]) -> None:
        """Record the index as it stands after a batch's writes are durable (None = not indexed)."""
        if self.enabled:
            cached = self._entries
            for ref, entry in entries.items():
                key = _key(ref)
                cached[key] = _value(entry)
                cached.move_to_end(key)
            while len(cached) > self._capacity:
                cached.popitem(last=False)
            INDEX_CACHE_ENTRIES.set(len(cached))

    def warm(self, entries: Iterable[IndexEntry]) -> int:
        """Load entries read from the index into an empty cache, up to capacity; returns how many."""
        loaded = 0
        if self.enabled:
            for entry in entries:
                if loaded >= self._capacity:
                    break
                self._entries[_key(entry.ref)] = _value(entry)
                loaded += 1
            INDEX_CACHE_ENTRIES.set(len(self._entries))
        return loaded

    def forget_table(self, source: str, table: str) -> None:
        for key in [k for k in self._entries if k[0] == source and k[1] == table]:
            del self._entries[key]
        INDEX_CACHE_ENTRIES.set(len(self._entries))

    def clear(self) -> None:
        self._entries.clear()
        INDEX_CACHE_ENTRIES.set(0)
