"""Lookup-key and index reads on the real store: many values of several keys in chunked ``IN`` requests,
entries and children read in one round, each answered with its own rows, and values nobody holds
answered empty (store/index.py)."""

from __future__ import annotations

from cassandra.cluster import Session

from store.index import IN_CHUNK, EntityIndex
from store.mutations import EntityRef, IndexEntry, KeyRef, LinkChild, LinkKeyChild, PutIndex, PutKey
from store.writer import ViewWriter
from tests.integration.conftest import Isolated


def test_owners_and_children_of_many_key_values_come_back_per_value(
    store_session: Session, isolated: Isolated
) -> None:
    ks = isolated.keyspace
    # More values than one request carries, over two keys of one table and a key of another source.
    fiscal = [KeyRef("crm", "public.customers", "fiscal_code", f"FC{i:03d}") for i in range(IN_CHUNK * 2 + 5)]
    email = [KeyRef("crm", "public.customers", "email", f"user{i}@example.com") for i in range(3)]
    other = [KeyRef("erp", "public.parties", "fiscal_code", "FC000")]
    held = fiscal[:-5] + email + other
    nobody = [*fiscal[-5:], KeyRef("crm", "public.customers", "fiscal_code", "not held")]
    mutations: list[PutKey | LinkKeyChild] = []
    for n, key in enumerate(held):
        mutations.append(PutKey(key, EntityRef(key.source, key.table, f"{n + 100}"), 1))
        mutations.append(LinkKeyChild(key, EntityRef("care", "public.interactions", f"i{n}"), 1))
    # One value held by two entities: both come back, smallest first.
    mutations.append(PutKey(fiscal[0], EntityRef("crm", "public.customers", "7"), 1))
    ViewWriter(store_session, ks).apply(mutations)

    index = EntityIndex(store_session, ks)
    owners = index.key_owners_many([*held, *nobody, fiscal[0]])
    children = index.key_children_many([*held, *nobody])

    assert set(owners) == set(held) | set(nobody)
    assert owners[fiscal[0]] == ["100", "7"]  # sorted as text, as the planner compares ids
    for n, key in enumerate(held[1:], start=1):
        assert owners[key] == [f"{n + 100}"], key
        assert children[key] == [EntityRef("care", "public.interactions", f"i{n}")], key
    for key in nobody:
        assert owners[key] == []
        assert children[key] == []
    # Same value under another source's key: its own owner, not crm's.
    assert owners[other[0]] == [f"{len(held) + 99}"]
    # The replicator's first read: owners of some values and rows of others, in one round.
    together = index.owners_and_key_children([*held, *nobody, fiscal[0]], [*held[:3], *nobody])
    assert together == (owners, index.key_children_many([*held[:3], *nobody]))


def test_index_entries_and_children_come_back_from_one_round_as_from_two(
    store_session: Session, isolated: Isolated
) -> None:
    """The applier's first read (consumer/applier.py): entries and the children waiting for the
    batch's first appearances, in one concurrent round of mixed requests, each answered with its own
    rows (more entities than one request carries, of two tables)."""
    ks = isolated.keyspace
    accounts = [EntityRef("core", "public.accounts", f"{i}") for i in range(IN_CHUNK + 3)]
    orders = [EntityRef("core", "public.orders", f"o{i}") for i in range(3)]
    unknown = EntityRef("core", "public.accounts", "never")
    mutations: list[PutIndex | LinkChild] = [
        PutIndex(IndexEntry(ref, "account", f"c{n}", None, 1, f"c{n}"), 1) for n, ref in enumerate(accounts)
    ]
    cards = {
        ref: [EntityRef("core", "public.cards", f"{ref.entity_id}-{k}") for k in range(2)]
        for ref in accounts[:5]
    }
    mutations += [LinkChild(parent, card, 1) for parent, children in cards.items() for card in children]
    ViewWriter(store_session, ks).apply(mutations)

    index = EntityIndex(store_session, ks)
    entries, children = index.entries_and_children([*accounts, unknown], [*accounts, *orders])

    assert entries == index.get_many([*accounts, unknown])
    seventh = entries[accounts[7]]
    assert seventh is not None
    assert seventh.customer_id == "c7"
    assert entries[unknown] is None
    assert children == index.children_many([*accounts, *orders])
    assert sorted(children[accounts[0]], key=str) == sorted(cards[accounts[0]], key=str)
    assert children[accounts[6]] == []
    assert children[orders[0]] == []
    # Only entries asked for, only parents asked for.
    assert set(entries) == {*accounts, unknown}
    assert set(children) == {*accounts, *orders}
