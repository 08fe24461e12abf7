"""A write cut between its requests (a worker SIGKILLed mid-round) leaves nothing in a waiting room that
the next settling round does not remove.

A round's requests land or not independently, so the tests cut one: the mutations the cut keeps are
applied to the in-memory store (tests/unit/fake_store.py) and the "process" dies. The same fault on the
real stack is the fault suite's SIGKILL case (tests/faults/test_faults.py), which found such a row.
"""

from __future__ import annotations

import pytest

from consumer.mapping import orphan_customer_id
from store.mutations import DeleteRow, EntityRef, Park, PutIndex
from tests.changes import ACCOUNTS, CARDS, change
from tests.kills import CutWriter, Killed
from tests.unit.fake_store import FakeStore, applier

CARD = EntityRef("core", "public.cards", "9")
ACCOUNT = EntityRef("core", "public.accounts", "1")
WAITING = orphan_customer_id(ACCOUNT)
CARD_CREATED = change(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000)
ACCOUNT_CREATED = change(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900)


def test_an_adoption_cut_after_the_new_row_and_index_is_cleaned_by_the_next_settling_round() -> None:
    store = FakeStore()
    applier(store, cache=1000).apply([CARD_CREATED])  # the card waits for its account
    # The account's process adopts the card, and dies with the adoption half written: the card's row
    # and index entry are at customer 7, its copy in the waiting room is not deleted.
    cut = CutWriter(store, at=lambda m: isinstance(m, DeleteRow), lost=lambda m: isinstance(m, DeleteRow))
    dying = applier(store, writer=cut, cache=1000)
    with pytest.raises(Killed):
        dying.apply([ACCOUNT_CREATED])
    assert store.view_of(WAITING) == {"9"}
    assert store.view_of("7") == {"1", "9"}

    settled = applier(store, cache=1000).settle_parked([("core", "public.cards")])

    assert store.view_of(WAITING) == set()
    assert store.view_of("7") == {"1", "9"}
    assert store.parked("core", "public.cards", 10) == []
    assert settled.waiting == {("core", "public.cards"): 0}


def test_a_parking_cut_before_its_index_entry_is_cleaned_once_the_replay_places_the_card() -> None:
    store = FakeStore()
    # The card's process parks it and dies: its row and link land in the waiting room, not its entry.
    cut = CutWriter(
        store, at=lambda m: isinstance(m, PutIndex), lost=lambda m: isinstance(m, PutIndex | Park)
    )
    dying = applier(store, writer=cut, cache=1000)
    with pytest.raises(Killed):
        dying.apply([CARD_CREATED])
    applier(store, cache=1000).apply([ACCOUNT_CREATED])  # the adoption finds no entry to move
    assert store.view_of(WAITING) == {"9"}
    # Its replacement replays the card: the account is known now, so it lands at customer 7.
    replacement = applier(store, cache=1000)
    replacement.apply([CARD_CREATED])
    assert store.customer_of(CARD) == "7"
    assert store.view_of(WAITING) == {"9"}

    replacement.settle_parked([("core", "public.cards")])

    assert store.view_of(WAITING) == set()
    assert store.view_of("7") == {"1", "9"}
    assert store.parked("core", "public.cards", 10) == []
