"""Lookup-key reads on the real store: many values of several keys in chunked ``IN`` requests, each
value answered with its own rows, and values nobody holds answered empty (store/index.py)."""

from __future__ import annotations

from cassandra.cluster import Session

from store.index import IN_CHUNK, EntityIndex
from store.mutations import EntityRef, KeyRef, LinkKeyChild, PutKey
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
