"""A process killed between writing a batch and settling it: another process finishes the settling
from the intent the batch recorded (store/intents.py, consumer/applier.py ``finish_intents``); and a
child written from its parent's old entry while the parent moved follows it at the second pass.

The replay of such a batch sees its entity moved (or re-keyed, or merged) already and plans no
settling, so without the intent the moved account's cards, the rows placed through a released key
value and the merged customer's rows stayed where they were, and a copy a cut write left behind stayed
for good. The kill is a cut writer (tests/unit/test_applier_cuts.py); the same on the real store:
tests/integration/test_settle_intents.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import pytest

from consumer.applier import Applier
from consumer.index_cache import IndexCache
from consumer.mapping import orphan_customer_id
from consumer.planner import Located, Redirects, keys_to_resolve
from store.index import EntityIndex
from store.intents import SettleIntents
from store.mutations import DeleteRow, EntityRef, IndexEntry, KeyRef, PutKey, PutRedirect
from store.writer import ViewWriter
from tests.changes import ACCOUNTS, CARDS, change
from tests.kills import CutWriter, Killed
from tests.unit.fake_store import FakeSettleIntents, FakeStore, applier
from tests.unit.test_identity import CODE, account, customer, interaction

ACCOUNT = EntityRef("core", "public.accounts", "1")
CARD = EntityRef("core", "public.cards", "9")
INTERACTION = EntityRef("care", "public.interactions", "1")

OPENED = change(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900)
CARD_ISSUED = change(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000)
HOLDER_CHANGED = change(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}, 2_000)
# Any intent written before "now + 1 s" is old enough: the tests do not wait out a grace period.
NO_GRACE = -1.0


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def intents() -> FakeSettleIntents:
    return FakeSettleIntents()


def kill_during(store: FakeStore, intents: FakeSettleIntents, cut: CutWriter, *changes: Located) -> None:
    dying = applier(store, writer=cut, intents=intents)
    with pytest.raises(Killed):
        dying.apply(changes)


def test_a_holder_change_cut_before_its_cards_follow_is_finished_by_another_process(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    applier(store, intents=intents).apply([OPENED, CARD_ISSUED])
    # The account's row and index entry land at customer 8, its delete at 7 does not, and the process
    # dies before its card follows.
    cut = CutWriter(store, at=lambda m: isinstance(m, DeleteRow), lost=lambda m: isinstance(m, DeleteRow))
    kill_during(store, intents, cut, HOLDER_CHANGED)
    # The replay of the batch finds the account at 8 already: nothing to move.
    applier(store, intents=intents).apply([HOLDER_CHANGED])
    assert store.view_of("7") == {"1", "9"}
    assert store.customer_of(CARD) == "7"

    finished = applier(store, intents=intents).finish_intents(grace_s=NO_GRACE)

    assert finished == 1
    assert store.view_of("7") == set()
    assert store.view_of("8") == {"1", "9"}
    assert store.customer_of(CARD) == "8"
    assert intents.rows == {}


def test_a_live_process_intent_younger_than_the_grace_is_left_to_it(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    applier(store, intents=intents).apply([OPENED, CARD_ISSUED])
    kill_during(store, intents, CutWriter(store, at=lambda m: True, lost=lambda m: False), HOLDER_CHANGED)

    assert applier(store, intents=intents).finish_intents(grace_s=3600) == 0
    assert store.customer_of(CARD) == "7"
    assert len(intents.rows) == 1


def test_a_released_key_value_cut_before_its_rows_re_resolve_is_finished_by_another_process(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    applier(store, intents=intents).apply([customer(7, ts=100), interaction(1, ts=110)])
    assert store.customer_of(INTERACTION) == "7"
    # Customer 7's fiscal code is corrected: the whole write lands, the process dies before the
    # interaction placed through the old code is re-resolved.
    corrected = customer(7, ts=200, code="VRDLGU75B02F205X", op="u")
    cut = CutWriter(store, at=lambda m: isinstance(m, PutKey), lost=lambda m: False)
    kill_during(store, intents, cut, corrected)
    applier(store, intents=intents).apply([corrected])
    assert store.customer_of(INTERACTION) == "7"

    applier(store, intents=intents).finish_intents(grace_s=NO_GRACE)

    waiting = orphan_customer_id(KeyRef("crm", "public.customers", "fiscal_code", CODE))
    assert store.customer_of(INTERACTION) == waiting
    assert store.view_of("7") == {"7"}
    assert store.parked("care", "public.interactions", 10) == ["1"]


def test_a_key_value_taken_over_by_a_new_holder_cut_before_its_rows_follow_is_finished_later(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    applier(store, intents=intents).apply([customer(9, ts=100), interaction(1, ts=110)])
    assert store.customer_of(INTERACTION) == "9"
    # A new CRM customer holding the same fiscal code (a duplicate): "10" sorts before "9", so it
    # becomes the value's owner, and the process dies before the interaction follows it.
    duplicate = customer(10, ts=200)
    cut = CutWriter(store, at=lambda m: isinstance(m, PutKey), lost=lambda m: False)
    kill_during(store, intents, cut, duplicate)
    applier(store, intents=intents).apply([duplicate])
    assert store.customer_of(INTERACTION) == "9"

    applier(store, intents=intents).finish_intents(grace_s=NO_GRACE)

    assert store.customer_of(INTERACTION) == "10"
    assert store.view_of("9") == {"9"}


def test_a_merge_cut_after_its_redirect_before_its_sweep_is_finished_by_another_process(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    other = "VRDLGU75B02F205X"
    applier(store, intents=intents).apply(
        [customer(7, ts=100), customer(8, ts=110, code=other), account(5, holder=8, ts=120)]
    )
    assert store.view_of("8") == {"8", "5"}
    merged = customer(8, ts=200, code=other, merged_into=7, op="u")
    # The redirect is written, the sweep that moves customer 8's rows to 7 never runs.
    cut = CutWriter(store, at=lambda m: isinstance(m, PutRedirect), lost=lambda m: False)
    kill_during(store, intents, cut, merged)
    # Its replacement loads the merges (as the replicator does at start) and replays the batch.
    applier(store, Redirects(store.redirects()), intents=intents).apply([merged])
    assert store.view_of("8") == {"5"}  # the replayed customer row lands at 7; its account stays

    applier(store, Redirects(store.redirects()), intents=intents).finish_intents(grace_s=NO_GRACE)

    assert store.view_of("8") == set()
    assert store.view_of("7") == {"7", "8", "5"}


def test_only_batches_that_move_placed_entities_record_an_intent_kept_until_settled_again(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    run = applier(store, intents=intents)
    run.apply([OPENED, CARD_ISSUED])  # first appearances: whatever waits for them is listed as parked
    updated = {"account_id": 1, "customer_id": 7, "x": 1}
    run.apply([change(ACCOUNTS, "u", {"account_id": 1}, updated, 1_500)])
    assert intents.recorded == 0

    run.apply([HOLDER_CHANGED])
    assert store.view_of("8") == {"1", "9"}
    assert len(intents.rows) == 1

    assert run.finish_intents(grace_s=NO_GRACE) == 1  # its own, once old enough
    assert intents.rows == {}
    assert store.view_of("8") == {"1", "9"}


class RacingIndex:
    """The index as one process reads it while another moves the account: its read of the account
    returns the entry before the move, and the move (written and settled) lands right after."""

    def __init__(self, store: FakeStore, move: Callable[[], object]) -> None:
        self._store = store
        self._move: Callable[[], object] | None = move

    def get_many(self, refs: Iterable[EntityRef]) -> dict[EntityRef, IndexEntry | None]:
        found = self._store.get_many(refs)
        if self._move is not None and ACCOUNT in found:
            move, self._move = self._move, None
            move()
        return found

    def entries_and_children(
        self, refs: Iterable[EntityRef], parents: Iterable[EntityRef]
    ) -> tuple[dict[EntityRef, IndexEntry | None], dict[EntityRef, list[EntityRef]]]:
        return self.get_many(refs), self._store.children_many(parents)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_card_written_from_its_account_old_entry_while_the_account_moved_follows_it_later(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    mover = applier(store, intents=intents)
    mover.apply([OPENED])
    # The card's process reads the account at customer 7; meanwhile the account's process moves it to
    # 8 and moves its children, before the card's link exists; then the card is written at 7.
    racing = RacingIndex(store, lambda: mover.apply([HOLDER_CHANGED]))
    card_process = Applier(
        cast(ViewWriter, store),
        cast(EntityIndex, racing),
        IndexCache(0),
        intents=cast(SettleIntents, intents),
    )
    card_process.apply([CARD_ISSUED])
    assert store.customer_of(ACCOUNT) == "8"
    assert store.customer_of(CARD) == "7"

    mover.finish_intents(grace_s=NO_GRACE)

    assert store.customer_of(CARD) == "8"
    assert store.view_of("7") == set()
    assert store.view_of("8") == {"1", "9"}


def test_the_owners_read_before_planning_cover_the_values_upserts_hold() -> None:
    held = KeyRef("crm", "public.customers", "fiscal_code", CODE)
    other = KeyRef("crm", "public.customers", "fiscal_code", "VRDLGU75B02F205X")

    placed_through = interaction(1, ts=2, code=other.value)
    assert keys_to_resolve([customer(10, ts=1), placed_through]) == {held, other}
    # A delete holds nothing: its before-image may carry only the primary key.
    assert keys_to_resolve([customer(10, ts=1, op="d")]) == set()
