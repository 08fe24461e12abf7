"""Two replicator processes share one store, each with its own index cache: a change that removes a
row (a delete, a via row leaving the view) must find it where the other process moved it, not where
its own cache last saw it.

The processes are two appliers over one in-memory store (tests/unit/fake_store.py); the same race on
the real stack is what tests/integration/test_identity.py's keep test caught now and then.
"""

from __future__ import annotations

from typing import Any

import pytest

from consumer.envelope import Op
from consumer.mapping import orphan_customer_id
from consumer.planner import Located
from scv.contracts.registration import DeletePolicy, SourceMapping, TableMapping
from store.mutations import EntityRef
from tests.changes import event, located
from tests.unit.fake_store import FakeStore, FakeTruncationLog, applier


def mapping(on_delete: DeletePolicy = "remove") -> SourceMapping:
    return SourceMapping.build(
        "core",
        "core",
        [
            TableMapping("core", "public.accounts", "account", customer_key="customer_id"),
            TableMapping(
                "core",
                "public.cards",
                "card",
                via_table="public.accounts",
                via_column="account_id",
                on_delete=on_delete,
                null_customer_key="skip",
            ),
        ],
    )


def change(
    table: TableMapping, op: Op, key: dict[str, Any], after: dict[str, Any] | None, ts: int
) -> Located:
    return located(table, event(table, op, key, after, ts))


@pytest.mark.parametrize("on_delete", ["remove", "keep"])
def test_a_delete_follows_a_row_that_another_process_moved(on_delete: DeletePolicy) -> None:
    tables = mapping(on_delete).tables
    accounts, cards = tables["public.accounts"], tables["public.cards"]
    store, truncations = FakeStore(), FakeTruncationLog()
    cards_process, accounts_process = (
        applier(store, truncations=truncations, cache=1000),
        applier(store, truncations=truncations, cache=1000),
    )
    card = EntityRef("core", "public.cards", "9")
    account = EntityRef("core", "public.accounts", "1")

    # The card is consumed before its account: it waits, and its process caches it there.
    cards_process.apply([change(cards, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000)])
    assert store.customer_of(card) == orphan_customer_id(account)
    # The account's process adopts it: the card moves to customer 7, unknown to the card's process.
    accounts_process.apply(
        [change(accounts, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900)]
    )
    assert store.view_of("7") == {"1", "9"}

    cards_process.apply([change(cards, "d", {"card_id": 9}, None, 2_000)])

    if on_delete == "remove":
        assert store.view_of("7") == {"1"}
        assert store.entry(card) is None
    else:
        ended = store.rows_of("7")["9"]
        assert ended.ended_at_us is not None
        assert ended.attributes == {"card_id": 9, "account_id": 1}


def test_a_via_row_leaving_the_view_follows_a_row_that_another_process_moved() -> None:
    tables = mapping().tables
    accounts, cards = tables["public.accounts"], tables["public.cards"]
    store, truncations = FakeStore(), FakeTruncationLog()
    cards_process, accounts_process = (
        applier(store, truncations=truncations, cache=1000),
        applier(store, truncations=truncations, cache=1000),
    )
    cards_process.apply([change(cards, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000)])
    accounts_process.apply(
        [change(accounts, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900)]
    )

    # The card is detached from its account (NULL parent, declared outside the view): an update
    # whose placement has no parent, as a direct-key row's would.
    cards_process.apply([change(cards, "u", {"card_id": 9}, {"card_id": 9, "account_id": None}, 2_000)])

    assert store.view_of("7") == {"1"}
    assert store.entry(EntityRef("core", "public.cards", "9")) is None
