"""The merge rules of the replicator, as a specification over plain data (no services)."""

from __future__ import annotations

import pytest

from consumer.exceptions import PlacementError
from consumer.mapping import entity_id_of, orphan_customer_id, place
from consumer.planner import Move, Truncate, collapse, plan_batch, refs_to_read, trusted_refs
from scv.contracts.registration import SourceMapping, TableMapping
from store.mutations import (
    DeleteIndex,
    DeleteRow,
    EntityRef,
    IndexEntry,
    LinkChild,
    PutIndex,
    PutRow,
    RowKey,
    UnlinkChild,
)
from tests.changes import event, located

MAPPING = SourceMapping.build(
    "core",
    "core",
    [
        TableMapping("core", "public.accounts", "account", customer_key="customer_id"),
        TableMapping("core", "public.cards", "card", via_table="public.accounts", via_column="account_id"),
        TableMapping("core", "public.orders", "order", customer_key="customer_id", null_customer_key="skip"),
        TableMapping("core", "public.consents", "consent", customer_key="customer_id"),
    ],
)
ACCOUNTS = MAPPING.tables["public.accounts"]
CARDS = MAPPING.tables["public.cards"]
ORDERS = MAPPING.tables["public.orders"]
CONSENTS = MAPPING.tables["public.consents"]


def ref(table: TableMapping, entity_id: str) -> EntityRef:
    return EntityRef("core", table.table, entity_id)


def entry(
    table: TableMapping, entity_id: str, customer: str, ts: int = 500, parent: EntityRef | None = None
) -> IndexEntry:
    return IndexEntry(ref(table, entity_id), table.kind, customer, parent, owner_ts=ts)


def key(table: TableMapping, customer: str, entity_id: str) -> RowKey:
    return RowKey(customer, table.kind, "core", table.table, entity_id)


def test_children_are_derived_from_via_tables() -> None:
    assert ACCOUNTS.children == ("public.cards",)
    assert CARDS.children == ()


def test_entity_id_of_composite_key_percent_encodes_parts() -> None:
    assert entity_id_of([42]) == "42"
    assert entity_id_of([42, "a/b"]) == "42/a%2Fb"


def test_create_of_new_entity_puts_row_and_index() -> None:
    ev = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7, "balance": 5})
    plan = plan_batch([located(ACCOUNTS, ev)], {})
    assert plan.mutations == [
        PutRow(key(ACCOUNTS, "7", "1"), ev.after or {}, True, 1000, 1000, home_id="7"),
        PutIndex(IndexEntry(ref(ACCOUNTS, "1"), "account", "7", None, 1000, home_id="7"), 1000),
    ]
    assert plan.moves == [Move(ref(ACCOUNTS, "1"), "7", 1000, "7")]  # adopts orphans waiting for it
    assert plan.outcomes == ["applied"]


def test_update_with_same_owner_writes_only_the_row() -> None:
    ev = event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, ts=2000)
    plan = plan_batch([located(ACCOUNTS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")})
    assert [type(m) for m in plan.mutations] == [PutRow]
    assert plan.moves == []


def test_unavailable_toast_columns_merge_instead_of_replace() -> None:
    ev = event(
        ACCOUNTS,
        "u",
        {"account_id": 1},
        {"account_id": 1, "customer_id": 7},
        unavailable=frozenset({"notes"}),
    )
    plan = plan_batch([located(ACCOUNTS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")})
    put = plan.mutations[0]
    assert isinstance(put, PutRow)
    assert put.replace is False
    assert "notes" not in put.attributes


def test_owner_change_leaves_old_partition_and_moves_children() -> None:
    ev = event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}, ts=3000)
    plan = plan_batch([located(ACCOUNTS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")})
    assert DeleteRow(key(ACCOUNTS, "7", "1"), 3000) in plan.mutations
    assert PutIndex(IndexEntry(ref(ACCOUNTS, "1"), "account", "8", None, 3000, "8"), 3000) in plan.mutations
    assert plan.moves == [Move(ref(ACCOUNTS, "1"), "8", 3000, "8")]


def test_replayed_older_change_does_not_regress_ownership() -> None:
    ev = event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, ts=400)
    plan = plan_batch([located(ACCOUNTS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "8", ts=500)})
    # Its cells are written at their own (older) timestamp, where LWW shadows them; nothing else.
    assert plan.mutations == [PutRow(key(ACCOUNTS, "7", "1"), ev.after or {}, True, 400, 400, home_id="7")]
    assert plan.moves == []


def test_via_child_resolves_through_parent_owner() -> None:
    ev = event(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1})
    plan = plan_batch([located(CARDS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")})
    assert plan.mutations[0] == PutRow(key(CARDS, "7", "9"), ev.after or {}, True, 1000, 1000, home_id="7")
    assert LinkChild(ref(ACCOUNTS, "1"), ref(CARDS, "9"), 1000) in plan.mutations
    assert (
        PutIndex(IndexEntry(ref(CARDS, "9"), "card", "7", ref(ACCOUNTS, "1"), 1000, "7"), 1000)
        in plan.mutations
    )


def test_via_child_with_unknown_parent_waits_in_orphan_partition() -> None:
    ev = event(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1})
    plan = plan_batch([located(CARDS, ev)], {})
    put = plan.mutations[0]
    assert isinstance(put, PutRow)
    assert put.key.customer_id == orphan_customer_id(ref(ACCOUNTS, "1"))


def test_parent_created_in_same_batch_places_child_directly() -> None:
    acc = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, ts=1000)
    card = event(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, ts=1001)
    plan = plan_batch([located(ACCOUNTS, acc), located(CARDS, card)], {})
    puts = [m for m in plan.mutations if isinstance(m, PutRow)]
    assert [p.key.customer_id for p in puts] == ["7", "7"]


def test_child_changing_parent_relinks() -> None:
    ev = event(CARDS, "u", {"card_id": 9}, {"card_id": 9, "account_id": 2}, ts=2000)
    known = {
        ref(CARDS, "9"): entry(CARDS, "9", "7", parent=ref(ACCOUNTS, "1")),
        ref(ACCOUNTS, "2"): entry(ACCOUNTS, "2", "8"),
    }
    plan = plan_batch([located(CARDS, ev)], known)
    assert UnlinkChild(ref(ACCOUNTS, "1"), ref(CARDS, "9"), 2000) in plan.mutations
    assert LinkChild(ref(ACCOUNTS, "2"), ref(CARDS, "9"), 2000) in plan.mutations
    assert DeleteRow(key(CARDS, "7", "9"), 2000) in plan.mutations


def test_delete_with_key_only_finds_row_through_index() -> None:
    ev = event(ACCOUNTS, "d", {"account_id": 1}, None, ts=5000)
    plan = plan_batch([located(ACCOUNTS, ev)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")})
    assert plan.mutations == [DeleteRow(key(ACCOUNTS, "7", "1"), 5000), DeleteIndex(ref(ACCOUNTS, "1"), 5000)]


def test_delete_of_unknown_entity_is_reported_not_failed() -> None:
    ev = event(ACCOUNTS, "d", {"account_id": 1}, None)
    plan = plan_batch([located(ACCOUNTS, ev)], {})
    assert plan.mutations == []
    assert plan.outcomes == ["unknown_delete"]


def test_delete_of_child_unlinks_from_parent() -> None:
    ev = event(CARDS, "d", {"card_id": 9}, None, ts=5000)
    known = {ref(CARDS, "9"): entry(CARDS, "9", "7", parent=ref(ACCOUNTS, "1"))}
    plan = plan_batch([located(CARDS, ev)], known)
    assert UnlinkChild(ref(ACCOUNTS, "1"), ref(CARDS, "9"), 5000) in plan.mutations


def test_primary_key_change_is_delete_then_create() -> None:
    delete = event(ACCOUNTS, "d", {"account_id": 1}, None, ts=6000)
    create = event(ACCOUNTS, "c", {"account_id": 2}, {"account_id": 2, "customer_id": 7}, ts=6000)
    plan = plan_batch(
        [located(ACCOUNTS, delete), located(ACCOUNTS, create)],
        {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7")},
    )
    assert DeleteRow(key(ACCOUNTS, "7", "1"), 6000) in plan.mutations
    assert any(isinstance(m, PutRow) and m.key == key(ACCOUNTS, "7", "2") for m in plan.mutations)


def test_truncate_plans_table_wide_delete_and_forgets_known_entities() -> None:
    trunc = event(ACCOUNTS, "t", None, None, ts=7000)
    upd = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, ts=7001)
    plan = plan_batch(
        [located(ACCOUNTS, trunc), located(ACCOUNTS, upd)], {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "8")}
    )
    assert plan.truncates == [Truncate("core", "public.accounts", 7000)]
    # After the truncate the entity counts as new: no delete from the pre-truncate owner.
    assert not any(isinstance(m, DeleteRow) for m in plan.mutations)


def test_null_customer_key_with_skip_policy_removes_entity_from_view() -> None:
    ev = event(ORDERS, "u", {"order_id": "o1"}, {"order_id": "o1", "customer_id": None}, ts=8000)
    plan = plan_batch([located(ORDERS, ev)], {ref(ORDERS, "o1"): entry(ORDERS, "o1", "7")})
    assert plan.outcomes == ["skipped"]
    assert DeleteRow(key(ORDERS, "7", "o1"), 8000) in plan.mutations


def test_null_customer_key_without_policy_is_a_placement_error() -> None:
    ev = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": None})
    with pytest.raises(PlacementError, match="null_customer_key"):
        place(ev, ACCOUNTS)


def test_missing_customer_key_column_names_the_fix() -> None:
    ev = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1})
    with pytest.raises(PlacementError, match="customer_key in the source spec"):
        place(ev, ACCOUNTS)


def test_composite_primary_key_makes_composite_entity_id() -> None:
    ev = event(
        CONSENTS,
        "c",
        {"customer_id": 7, "purpose": "marketing"},
        {"customer_id": 7, "purpose": "marketing", "granted": True},
    )
    placement = place(ev, CONSENTS)
    assert placement.ref.entity_id == "7/marketing"
    assert placement.customer_id == "7"


def test_same_transaction_changes_to_one_row_collapse_to_last() -> None:
    first = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7, "b": 1}, ts=9000)
    second = event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 7, "b": 2}, ts=9000)
    plan = plan_batch([located(ACCOUNTS, first), located(ACCOUNTS, second)], {})
    puts = [m for m in plan.mutations if isinstance(m, PutRow)]
    assert len(puts) == 1
    assert puts[0].attributes["b"] == 2


def test_collapse_merges_partial_image_into_complete_one_of_same_transaction() -> None:
    k = key(ACCOUNTS, "7", "1")
    full = PutRow(k, {"a": 1, "notes": "long"}, True, 10, 10)
    partial = PutRow(k, {"a": 2}, False, 10, 10)
    assert collapse([full, partial]) == [PutRow(k, {"a": 2, "notes": "long"}, True, 10, 10)]


def test_delete_then_create_in_same_transaction_keeps_the_create() -> None:
    k = key(ACCOUNTS, "7", "1")
    put = PutRow(k, {"a": 1}, True, 10, 10)
    assert collapse([DeleteRow(k, 10), put]) == [put]


def test_refs_to_read_skips_creates_of_childless_direct_tables() -> None:
    consent = event(CONSENTS, "c", {"customer_id": 7, "purpose": "x"}, {"customer_id": 7, "purpose": "x"})
    account = event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7})
    card = event(CARDS, "u", {"card_id": 9}, {"card_id": 9, "account_id": 1})
    refs = refs_to_read([located(CONSENTS, consent), located(ACCOUNTS, account), located(CARDS, card)])
    assert refs == {ref(ACCOUNTS, "1"), ref(CARDS, "9")}


def test_only_updates_of_direct_key_entities_are_trusted_to_the_cache() -> None:
    update = located(ACCOUNTS, event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 7}))
    snapshot = located(ACCOUNTS, event(ACCOUNTS, "r", {"account_id": 2}, {"account_id": 2, "customer_id": 7}))
    card = located(CARDS, event(CARDS, "u", {"card_id": 9}, {"card_id": 9, "account_id": 1}))
    # A delete's key-only image cannot tell a card from an account: another process may have moved
    # either (tests/unit/test_applier_cache.py), so deletes always read the store.
    deletes = [located(t, event(t, "d", {f"{t.kind}_id": 3})) for t in (CONSENTS, CARDS)]
    assert trusted_refs([update, snapshot, card, *deletes]) == {ref(ACCOUNTS, "1")}


def test_an_entity_created_in_the_batch_is_not_trusted_even_if_also_updated() -> None:
    # After a truncate processed elsewhere, a cached entry may be gone from the store: the create
    # that must follow in the source is what re-reads it, so the whole batch's view of it is read.
    create = located(ACCOUNTS, event(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}))
    update = located(ACCOUNTS, event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}))
    assert trusted_refs([create, update]) == set()


def test_plan_reports_the_index_as_written_for_the_cache() -> None:
    moved = event(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}, ts=2000)
    gone = event(CONSENTS, "d", {"consent_id": 3}, ts=2000)
    plan = plan_batch(
        [located(ACCOUNTS, moved), located(CONSENTS, gone)],
        {ref(ACCOUNTS, "1"): entry(ACCOUNTS, "1", "7"), ref(CONSENTS, "3"): entry(CONSENTS, "3", "7")},
    )
    assert plan.index == {
        ref(ACCOUNTS, "1"): IndexEntry(ref(ACCOUNTS, "1"), "account", "8", None, 2000, "8"),
        ref(CONSENTS, "3"): None,
    }
