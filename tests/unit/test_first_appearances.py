"""A first appearance adopts the children that waited for it, and the rows placed through its lookup
key values, without rounds of their own after the write when nobody waited (consumer/applier.py
``_moves_that_adopt``, ``_resolves_that_move``).

The children of the batch's created entities, and the rows placed through the values they hold, are
listed in the batch's first reads. A move or a re-resolve is skipped only when that list was empty,
the entity had no entry before the batch and the batch links nothing to it: rows parked in an earlier
batch, in the same batch, or by another process between the read and the write are all placed under
the new customer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from consumer.planner import first_appearances, first_held_keys
from store.mutations import EntityRef, IndexEntry, KeyRef
from tests.changes import ACCOUNTS, CARDS, change
from tests.unit.fake_store import FakeStore, applier
from tests.unit.test_identity import CODE, customer, interaction

ACCOUNT = EntityRef("core", "public.accounts", "1")
CARD = EntityRef("core", "public.cards", "9")
CUSTOMER = EntityRef("crm", "public.customers", "7")
INTERACTION = EntityRef("care", "public.interactions", "1")
FISCAL_CODE = KeyRef("crm", "public.customers", "fiscal_code", CODE)

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
    """The store as the owner's process sees it: right after its first read lists what waits for
    ``owner`` (an entity's children, or the rows placed through a key value), another process parks
    such a row (it read no owner for it)."""

    def __init__(self, owner: EntityRef | KeyRef, park: Callable[[], object]) -> None:
        super().__init__()
        self._owner = owner
        self._park: Callable[[], object] | None = park

    def _parks_if_listed(self, listed: Iterable[object]) -> None:
        if self._park is not None and self._owner in listed:
            park, self._park = self._park, None
            park()

    def entries_and_children(
        self, refs: Iterable[EntityRef], parents: Iterable[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], dict[EntityRef, list[EntityRef]]]:
        found = super().entries_and_children(refs, parents)
        self._parks_if_listed(found[1])
        return found

    def owners_and_key_children(
        self, keys: Iterable[KeyRef], waiting: Iterable[KeyRef]
    ) -> tuple[dict[KeyRef, list[str]], dict[KeyRef, list[EntityRef]]]:
        found = super().owners_and_key_children(keys, waiting)
        self._parks_if_listed(found[1])
        return found


def test_a_child_parked_by_another_process_after_the_read_is_placed_by_the_settling_round() -> None:
    store = ParksAfterTheRead(ACCOUNT, lambda: card_process.apply([CARD_ISSUED]))
    account_process, card_process = applier(store), applier(store)

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


def test_a_key_holders_first_appearance_nobody_waited_for_costs_no_round_after_the_write(
    store: FakeStore,
) -> None:
    applier(store).apply([customer(7, ts=100)])

    assert store.customer_of(CUSTOMER) == "7"
    assert store.rounds["owners_and_key_children"] == 1
    assert store.rounds["key_children_many"] == 0
    assert store.rounds["key_owners_many"] == 0


def test_a_row_parked_under_a_key_value_earlier_joins_the_values_first_holder(store: FakeStore) -> None:
    run = applier(store)
    run.apply([interaction(1, ts=100)])
    assert store.customer_of(INTERACTION) != "7"

    run.apply([customer(7, ts=200)])

    assert store.customer_of(INTERACTION) == "7"
    assert store.parked("care", "public.interactions", 10) == []


def test_re_resolving_a_value_nothing_is_placed_through_reads_its_rows_only(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(7, ts=100)])
    store.rounds.clear()

    run.apply([customer(7, ts=200, code="VRDLGU75B02F205X", op="u")])  # a fiscal-code correction

    # Both values are re-resolved; neither places a row, so neither's owner is read.
    assert store.rounds["key_children_many"] == 1
    assert store.rounds["key_owners_many"] == 0


def test_a_row_parked_under_a_key_value_by_another_process_after_the_read_is_placed_by_settling() -> None:
    store = ParksAfterTheRead(FISCAL_CODE, lambda: care_process.apply([interaction(1, ts=150)]))
    crm_process, care_process = applier(store), applier(store)

    crm_process.apply([customer(7, ts=200)])
    assert store.customer_of(CUSTOMER) == "7"
    assert store.customer_of(INTERACTION) != "7"

    crm_process.settle_parked([("care", "public.interactions")])

    assert store.customer_of(INTERACTION) == "7"


def test_the_values_held_by_first_appearances_name_their_holder() -> None:
    held = first_held_keys(
        [customer(7, ts=100), customer(8, ts=100, code="X1", op="u"), interaction(1, ts=90)]
    )
    assert held == {FISCAL_CODE: CUSTOMER}


def test_the_settling_round_scans_every_tables_waiting_room_in_one_round(store: FakeStore) -> None:
    run = applier(store)
    run.apply([CARD_ISSUED, interaction(1, ts=100)])  # both wait: no account, no customer yet

    settled = run.settle_parked([("core", "public.cards"), ("care", "public.interactions")])

    assert store.rounds["parked_many"] == 1
    assert settled.waiting == {("core", "public.cards"): 1, ("care", "public.interactions"): 1}
