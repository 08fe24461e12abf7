"""Store work per applied change from two readings of the store's per-table counters (pure)."""

from __future__ import annotations

from bench.store_work import TableWork, table_work


def test_table_work_divides_each_tables_new_partitions_by_the_changes_applied() -> None:
    before = {("entity_index", "reads"): 1_000, ("entity_index", "writes"): 50, ("key_owners", "reads"): 7}
    after = {("entity_index", "reads"): 1_626, ("entity_index", "writes"): 86, ("key_owners", "reads"): 202}
    assert table_work(before, after, applied=1_000) == {
        "entity_index": TableWork(reads=0.626, writes=0.036),
        "key_owners": TableWork(reads=0.195, writes=0.0),
    }


def test_table_work_leaves_out_untouched_tables_and_counts_new_ones_from_zero() -> None:
    before = {("parked_entities", "reads"): 40}
    after = {("parked_entities", "reads"): 40, ("customer_view", "writes"): 30}
    assert table_work(before, after, applied=100) == {"customer_view": TableWork(reads=0.0, writes=0.3)}


def test_table_work_of_a_window_that_applied_nothing_is_empty() -> None:
    assert table_work({}, {("entity_index", "reads"): 10}, applied=0) == {}
