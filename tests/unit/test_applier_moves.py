"""Children follow their parent's move: level by level, in a few rounds, whatever the number of parents.

The applier runs against an in-memory fake of the index and the writer (tests/unit/fake_store.py), so
the rounds it makes can be counted; the same behaviour on the real stack is in
tests/integration/test_replicator.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from consumer.planner import Move
from store.mutations import EntityRef, IndexEntry, LinkChild, PutIndex
from tests.unit.fake_store import FakeStore, applier

ACCOUNTS, CARDS, TOKENS = "public.accounts", "public.cards", "public.card_tokens"


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
    assert store.index[card] == (5_001, IndexEntry(card, "cards", "7", account, 5_001, "7"))
    assert store.view_of("7") == {"c"}
    assert store.view_of("~orphans/a") == {"a"}


def test_moves_without_children_cost_one_round() -> None:
    store = FakeStore()
    accounts: Sequence[EntityRef] = [store.place(ACCOUNTS, f"a{n}", "old", None) for n in range(10)]
    moves(store, *(Move(a, "new", 1_000) for a in accounts))
    assert store.rounds == Counter(children_many=1)
