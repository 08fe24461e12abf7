"""Children follow their parent's move: level by level, in a few rounds, whatever the number of parents.

The applier runs against an in-memory fake of the index and the writer (plain dicts, last write wins
by timestamp), so the rounds it makes can be counted; the same behaviour on the real stack is in
tests/integration/test_replicator.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar, cast

from consumer.applier import Applier
from consumer.index_cache import IndexCache
from consumer.planner import Move
from store.index import EntityIndex, StoredRow
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
from store.truncations import TruncationLog
from store.writer import ViewWriter

ACCOUNTS, CARDS, TOKENS = "public.accounts", "public.cards", "public.card_tokens"
K = TypeVar("K")
V = TypeVar("V")


class FakeStore:
    """The index, the parent -> children links and the view rows, with LWW on write timestamps."""

    def __init__(self) -> None:
        self.index: dict[EntityRef, tuple[int, IndexEntry | None]] = {}
        self.links: dict[EntityRef, dict[EntityRef, tuple[int, bool]]] = {}
        self.rows: dict[RowKey, tuple[int, StoredRow | None]] = {}
        self.rounds: Counter[str] = Counter()

    # -- EntityIndex ---------------------------------------------------------------------------

    def get_many(self, refs: Iterable[EntityRef]) -> dict[EntityRef, IndexEntry | None]:
        self.rounds["get_many"] += 1
        return {ref: self.index.get(ref, (0, None))[1] for ref in refs}

    def children_many(self, parents: Iterable[EntityRef]) -> dict[EntityRef, list[EntityRef]]:
        self.rounds["children_many"] += 1
        links = self.links
        return {p: sorted((c for c, (_, on) in links.get(p, {}).items() if on), key=str) for p in parents}

    def rows_many(self, keys: Iterable[RowKey]) -> dict[RowKey, StoredRow | None]:
        self.rounds["rows_many"] += 1
        return {key: self.rows.get(key, (0, None))[1] for key in keys}

    def table_entries(self, tables: Iterable[tuple[str, str]]) -> Iterator[IndexEntry]:
        wanted = set(tables)
        entries = [entry for _ts, entry in self.index.values() if entry is not None]
        return iter([e for e in entries if (e.ref.source, e.ref.table) in wanted])

    # -- ViewWriter ----------------------------------------------------------------------------

    def apply(self, mutations: Iterable[Mutation]) -> int:
        self.rounds["write"] += 1
        for m in mutations:
            match m:
                case PutRow(key=key, attributes=attributes, write_ts=ts, source_ts_us=src):
                    self._put(self.rows, key, ts, StoredRow(dict(attributes), src))
                case DeleteRow(key=key, write_ts=ts):
                    self._put(self.rows, key, ts, None)
                case PutIndex(entry=entry, write_ts=ts):
                    self._put(self.index, entry.ref, ts, entry)
                case DeleteIndex(ref=ref, write_ts=ts):
                    self._put(self.index, ref, ts, None)
                case LinkChild(parent=parent, child=child, write_ts=ts):
                    self._put(self.links.setdefault(parent, {}), child, ts, True)
                case UnlinkChild(parent=parent, child=child, write_ts=ts):
                    self._put(self.links.setdefault(parent, {}), child, ts, False)
        return 1

    @staticmethod
    def _put(table: dict[K, tuple[int, V]], key: K, ts: int, value: V) -> None:
        # CQL: the newest write timestamp wins (ties are broken by value there; not needed here).
        if key not in table or ts >= table[key][0]:
            table[key] = (ts, value)

    # -- seeding -------------------------------------------------------------------------------

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

    def customer_of(self, ref: EntityRef) -> str | None:
        entry = self.index.get(ref, (0, None))[1]
        return entry.customer_id if entry else None

    def view_of(self, customer: str) -> set[str]:
        return {key.entity_id for key, (_, row) in self.rows.items() if row and key.customer_id == customer}


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


def applier(store: FakeStore, truncations: FakeTruncationLog | None = None) -> Applier:
    return Applier(
        cast(ViewWriter, store),
        cast(EntityIndex, store),
        IndexCache(0),
        cast(TruncationLog, truncations or FakeTruncationLog()),
    )


def moves(store: FakeStore, *items: Move) -> None:
    store.rounds.clear()
    applier(store)._move_children(list(items))


def test_many_parents_move_their_children_in_one_round_per_level() -> None:
    store = FakeStore()
    parents = []
    for n in range(50):
        account = store.place(ACCOUNTS, f"a{n}", "old", None)
        card = store.place(CARDS, f"c{n}", "old", account)
        store.place(TOKENS, f"t{n}", "old", card)
        parents.append(Move(account, "new", 1_000))
    moves(store, *parents)
    assert {store.customer_of(EntityRef("core", CARDS, f"c{n}")) for n in range(50)} == {"new"}
    assert {store.customer_of(EntityRef("core", TOKENS, f"t{n}")) for n in range(50)} == {"new"}
    assert store.view_of("old") == {f"a{n}" for n in range(50)}  # the accounts move in the plan, not here
    assert store.view_of("new") == {f"c{n}" for n in range(50)} | {f"t{n}" for n in range(50)}
    # Cards, then tokens, then a level with no children: never a round per parent.
    assert store.rounds == Counter(children_many=3, get_many=2, rows_many=2, write=2)


def test_children_follow_the_newest_of_two_moves_of_one_parent() -> None:
    store = FakeStore()
    account = store.place(ACCOUNTS, "a", "first", None)
    store.place(CARDS, "c", "first", account)
    moves(store, Move(account, "third", 3_000), Move(account, "second", 2_000))
    assert store.customer_of(EntityRef("core", CARDS, "c")) == "third"
    assert store.view_of("third") == {"c"}


def test_a_stale_link_does_not_drag_a_child_that_has_another_parent() -> None:
    store = FakeStore()
    old_parent = store.place(ACCOUNTS, "a1", "x", None)
    new_parent = store.place(ACCOUNTS, "a2", "y", None)
    card = store.place(CARDS, "c", "x", old_parent)
    # The card moved to a2 but the unlink from a1 has not landed (e.g. an older link replayed).
    store.apply(
        [PutIndex(IndexEntry(card, "cards", "y", new_parent, 200), 200), LinkChild(new_parent, card, 200)]
    )
    moves(store, Move(old_parent, "z", 1_000))
    assert store.customer_of(card) == "y"


def test_a_moved_child_is_written_above_its_own_timestamp() -> None:
    store = FakeStore()
    account = store.place(ACCOUNTS, "a", "~orphans/a", None, ts=100)
    card = store.place(CARDS, "c", "~orphans/a", account, ts=5_000)  # newer than the move below
    moves(store, Move(account, "7", 5_000))
    assert store.index[card] == (5_001, IndexEntry(card, "cards", "7", account, 5_001))
    assert store.view_of("7") == {"c"}
    assert store.view_of("~orphans/a") == {"a"}


def test_moves_without_children_cost_one_round() -> None:
    store = FakeStore()
    accounts: Sequence[EntityRef] = [store.place(ACCOUNTS, f"a{n}", "old", None) for n in range(10)]
    moves(store, *(Move(a, "new", 1_000) for a in accounts))
    assert store.rounds == Counter(children_many=1)
