"""The replicator's index cache: answers only trusted refs, learns what was written, stays bounded."""

from __future__ import annotations

import gc

from consumer.index_cache import IndexCache
from store.mutations import EntityRef, IndexEntry


def ref(entity_id: str, table: str = "public.accounts") -> EntityRef:
    return EntityRef("core", table, entity_id)


def entry(entity_id: str, customer: str = "7", table: str = "public.accounts") -> IndexEntry:
    return IndexEntry(ref(entity_id, table), "account", customer, None, owner_ts=100)


def test_untrusted_refs_are_always_read_even_when_cached() -> None:
    cache = IndexCache(10)
    cache.learn({ref("1"): entry("1"), ref("2"): entry("2")})
    known, to_read = cache.split([ref("1"), ref("2"), ref("3")], trusted={ref("1"), ref("3")})
    assert known == {ref("1"): entry("1")}
    assert to_read == {ref("2"), ref("3")}


def test_a_known_absence_is_answered_too() -> None:
    cache = IndexCache(10)
    cache.learn({ref("1"): None})
    known, to_read = cache.split([ref("1")], trusted={ref("1")})
    assert known == {ref("1"): None}
    assert to_read == set()


def test_least_recently_used_entries_leave_first() -> None:
    cache = IndexCache(2)
    cache.learn({ref("1"): entry("1"), ref("2"): entry("2")})
    cache.split([ref("1")], trusted={ref("1")})  # 1 is now the most recent
    cache.learn({ref("3"): entry("3")})
    assert len(cache) == 2
    _, to_read = cache.split([ref("1"), ref("2"), ref("3")], trusted={ref("1"), ref("2"), ref("3")})
    assert to_read == {ref("2")}


def test_warm_stops_at_capacity_and_truncate_forgets_the_table() -> None:
    cache = IndexCache(3)
    loaded = cache.warm(entry(str(i)) for i in range(10))
    assert loaded == 3
    cache.learn({ref("9", "public.orders"): entry("9", table="public.orders")})
    cache.forget_table("core", "public.accounts")
    both = {ref("0"), ref("9", "public.orders")}
    _, to_read = cache.split(both, trusted=both)
    assert to_read == {ref("0")}


def test_capacity_zero_turns_the_cache_off() -> None:
    cache = IndexCache(0)
    cache.learn({ref("1"): entry("1")})
    assert cache.warm([entry("2")]) == 0
    _, to_read = cache.split([ref("1")], trusted={ref("1")})
    assert to_read == {ref("1")}


def test_cached_entries_add_no_objects_for_the_garbage_collector_to_walk() -> None:
    # A full collection walks every tracked object: 300k cached entries as dataclasses were a pause
    # of the replicator's loop every few seconds.
    cache = IndexCache(20_000)
    gc.collect()
    before = len(gc.get_objects())
    cache.learn({ref(str(i)): entry(str(i), customer=str(i % 97)) for i in range(10_000)})
    cache.learn({ref(str(i), "public.orders"): None for i in range(10_000)})
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    known, _ = cache.split([ref("42")], trusted={ref("42")})
    assert known == {ref("42"): entry("42", customer=str(42 % 97))}
