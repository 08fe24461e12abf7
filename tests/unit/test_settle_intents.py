"""A process killed between writing a batch and settling it: another process finishes the settling
from the intent the batch recorded (store/intents.py, consumer/applier.py ``finish_intents``).

The replay of such a batch sees its entity moved (or re-keyed, or merged) already and plans no
settling, so without the intent the moved account's cards, the rows placed through a released key
value and the merged customer's rows stayed where they were, and a copy a cut write left behind stayed
for good. The kill is a cut writer (tests/unit/test_applier_cuts.py); the same on the real store:
tests/integration/test_settle_intents.py.
"""

from __future__ import annotations

import pytest

from consumer.mapping import orphan_customer_id
from consumer.planner import Located, Redirects
from store.mutations import DeleteRow, EntityRef, KeyRef, PutKey, PutRedirect
from tests.kills import CutWriter, Killed
from tests.unit.fake_store import FakeSettleIntents, FakeStore, applier
from tests.unit.test_applier_cuts import ACCOUNTS, CARDS, change
from tests.unit.test_identity import CODE, account, customer, interaction

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


def test_only_batches_that_move_placed_entities_record_an_intent_and_each_is_cleared(
    store: FakeStore, intents: FakeSettleIntents
) -> None:
    run = applier(store, intents=intents)
    run.apply([OPENED, CARD_ISSUED])  # first appearances: whatever waits for them is listed as parked
    run.apply([change(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 7, "x": 1}, 1_500)])
    assert intents.recorded == 0

    run.apply([HOLDER_CHANGED])

    assert intents.recorded == 1
    assert intents.rows == {}
    assert store.view_of("8") == {"1", "9"}
