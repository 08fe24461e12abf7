"""A first appearance adopts the children that waited for it, without a round of its own after the
write when nobody waited (consumer/applier.py ``_moves_that_adopt``).

The children of the batch's created entities are listed in the same round as the index entries. A
move is skipped only when that list was empty, the entity had no entry before the batch and the batch
links no child to it: children parked in an earlier batch, in the same batch, or by another process
between the read and the write are all placed under the new customer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from consumer.planner import first_appearances
from store.mutations import EntityRef, IndexEntry
from tests.changes import ACCOUNTS, CARDS, change
from tests.unit.fake_store import FakeStore, applier

ACCOUNT = EntityRef("core", "public.accounts", "1")
CARD = EntityRef("core", "public.cards", "9")

OPENED = change(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900)
CARD_ISSUED = change(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def test_a_first_appearance_nobody_waits_for_costs_one_read_round_and_no_round_after_the_write(
    store: FakeStore,
) -> None:
    applier(store).apply([OPENED])

    assert store.customer_of(ACCOUNT) == "7"
    assert store.rounds["entries_and_children"] == 1
    # The round after the write that looked for children to adopt is gone.
    assert store.rounds["children_many"] == 0
    assert store.rounds["get_many"] == 0


def test_a_child_parked_in_an_earlier_batch_is_adopted_by_its_parents_first_appearance(
    store: FakeStore,
) -> None:
    run = applier(store)
    run.apply([CARD_ISSUED])  # the account is not known yet: the card waits
    assert store.customer_of(CARD) != "7"

    run.apply([OPENED])

    assert store.customer_of(CARD) == "7"
    assert store.view_of("7") == {"1", "9"}


def test_a_child_parked_earlier_in_the_same_batch_is_adopted_in_that_batch(store: FakeStore) -> None:
    applier(store).apply([CARD_ISSUED, OPENED])

    assert store.customer_of(CARD) == "7"
    assert store.view_of("7") == {"1", "9"}


class ParksAfterTheRead(FakeStore):
    """The store as the account's process sees it: right after its first read, another process parks
    the account's card (it read the account before the account was written)."""

    def __init__(self) -> None:
        super().__init__()
        self.park: Callable[[], object] | None = None

    def entries_and_children(
        self, refs: Iterable[EntityRef], parents: Iterable[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], dict[EntityRef, list[EntityRef]]]:
        found = super().entries_and_children(refs, parents)
        if self.park is not None:
            park, self.park = self.park, None
            park()
        return found


def test_a_child_parked_by_another_process_after_the_read_is_placed_by_the_settling_round() -> None:
    store = ParksAfterTheRead()
    account_process, card_process = applier(store), applier(store)
    store.park = lambda: card_process.apply([CARD_ISSUED])

    account_process.apply([OPENED])
    # The account's process listed no child, so it adopted none itself.
    assert store.customer_of(ACCOUNT) == "7"
    assert store.customer_of(CARD) != "7"

    account_process.settle_parked([("core", "public.cards")])

    assert store.customer_of(CARD) == "7"
    assert store.view_of("7") == {"1", "9"}


def test_only_creates_and_snapshot_reads_of_tables_with_children_are_first_appearances() -> None:
    updated = change(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}, 2_000)
    snapshot = change(ACCOUNTS, "r", {"account_id": 2}, {"account_id": 2, "customer_id": 7}, 800)

    assert first_appearances([OPENED, CARD_ISSUED, updated, snapshot]) == {
        ACCOUNT,
        EntityRef("core", "public.accounts", "2"),
    }
