"""The store's key limits, checked before a write is sent (store/limits.py): an empty partition key and
keys over 65,535 bytes, counted as Cassandra counts them (measured on Cassandra 5)."""

from __future__ import annotations

import pytest

from store.limits import refusal
from store.mutations import DeleteRow, EntityRef, IndexEntry, LinkChild, Mutation, PutIndex, PutRow, RowKey


def _row(customer: str, entity: str = "1") -> RowKey:
    return RowKey(customer, "note", "crm", "public.notes", entity)


@pytest.mark.parametrize(
    ("mutation", "reason", "message"),
    [
        (PutRow(_row(""), {}, True, 1, 1), "empty_key", "customer_view: Key may not be empty"),
        (DeleteRow(_row(""), 1), "empty_key", "Key may not be empty"),
        (PutRow(_row("k" * 70_000), {}, True, 1, 1), "key_too_large", "Key length of 70000 is longer"),
        # The clustering key counts kind, source, table and entity id together: 4 + 3 + 12 + 65,520.
        (PutRow(_row("c", "e" * 65_520), {}, True, 1, 1), "key_too_large", "Key length of 65539"),
        (
            PutIndex(IndexEntry(EntityRef("crm", "public.notes", "e" * 70_000), "note", "c", None, 1), 1),
            "key_too_large",
            "entity_index",
        ),
        (
            LinkChild(EntityRef("crm", "public.a", "p" * 70_000), EntityRef("crm", "public.b", "c"), 1),
            "key_too_large",
            "entity_children",
        ),
    ],
)
def test_writes_the_store_would_refuse_are_named_with_the_stores_words(
    mutation: Mutation, reason: str, message: str
) -> None:
    found = refusal(mutation)
    assert found is not None
    assert found[0] == reason
    assert message in found[1]


@pytest.mark.parametrize(
    "mutation",
    [
        PutRow(_row("c", ""), {}, True, 1, 1),  # an empty clustering value is allowed
        PutRow(_row("k" * 65_535), {}, True, 1, 1),
        PutRow(_row("€" * 100), {"a" * 70_000: "s:x"}, True, 1, 1),  # cells are no key
    ],
)
def test_writes_within_the_limits_pass(mutation: Mutation) -> None:
    assert refusal(mutation) is None
