"""A truncate wins over row changes older than it, whichever partition or process applies them, and
whenever they arrive (the in-memory fakes of tests/unit/test_applier_moves.py stand in for the store)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from consumer.planner import Known, plan_batch
from store.mutations import EntityRef, IndexEntry, RowKey
from tests.unit.fake_store import FakeStore, FakeTruncationLog, applier
from tests.unit.test_planner import ORDERS, event, located

ORDER = "public.orders"


def _insert(order_id: str, customer: str, ts: int) -> object:
    return located(
        ORDERS,
        event(ORDERS, "c", {"order_id": order_id}, {"order_id": order_id, "customer_id": customer}, ts),
    )


def _row(store: FakeStore, order_id: str, customer: str) -> object:
    return store.rows.get(RowKey(customer, "order", "core", ORDER, order_id), (0, None))[1]


def test_a_row_change_older_than_the_tables_truncate_is_refused() -> None:
    plan = plan_batch(
        [_insert("o1", "c1", ts=50), _insert("o2", "c1", ts=150)], Known(truncated={("core", ORDER): 100})
    )
    assert plan.outcomes == ["before_truncate", "applied"]
    assert {m.key.entity_id for m in plan.mutations if hasattr(m, "key")} == {"o2"}


def test_a_truncate_refuses_older_rows_later_in_the_same_batch() -> None:
    truncate = located(ORDERS, event(ORDERS, "t", None, ts=100))
    plan = plan_batch([_insert("o1", "c1", ts=50), truncate, _insert("o2", "c1", ts=60)], Known())
    assert plan.outcomes == ["applied", "truncated", "before_truncate"]


def test_rows_waiting_in_another_partition_do_not_survive_a_truncate_applied_before_them() -> None:
    store, log = FakeStore(), FakeTruncationLog()
    # The truncate (commit time 100) is applied first, from its own partition...
    applier(store, truncations=log).apply([located(ORDERS, event(ORDERS, "t", None, ts=100))])
    # ...then, by another process, inserts committed before it that waited in other partitions.
    outcomes = applier(store, truncations=log).apply([_insert("o1", "c1", ts=50)])
    assert outcomes == ["before_truncate"]
    assert _row(store, "o1", "c1") is None


def test_a_truncate_applied_by_another_process_meanwhile_deletes_the_rows_this_one_wrote() -> None:
    store, log = FakeStore(), FakeTruncationLog()
    mine = applier(store, truncations=log)
    mine.apply([_insert("o0", "c1", ts=10)])  # this process has read the (empty) truncate times

    class TruncatedWhileWriting(FakeTruncationLog):
        def of_sources(self, sources: Iterable[str]) -> dict[tuple[str, str], int]:
            # Another process records a truncate (time 100) just after this one planned its batch.
            log.record("core", ORDER, 100)
            return log.of_sources(sources)

    mine._truncation_log = TruncatedWhileWriting()  # type: ignore[assignment]
    outcomes = mine.apply([_insert("o1", "c1", ts=50), _insert("o2", "c1", ts=150)])
    assert outcomes == ["applied", "applied"]
    assert _row(store, "o1", "c1") is None
    assert store.index[EntityRef("core", ORDER, "o1")][1] is None
    assert _row(store, "o2", "c1") is not None


def test_a_truncate_is_recorded_before_the_tables_entities_are_listed() -> None:
    store, log = FakeStore(), FakeTruncationLog()
    applier(store, truncations=log).apply([_insert("o1", "c1", ts=50)])
    listed_after: list[dict[tuple[str, str], int]] = []
    original = store.table_entries

    def table_entries(tables: Iterable[tuple[str, str]]) -> Iterator[IndexEntry]:
        listed_after.append(dict(log.truncated))
        return original(tables)

    store.table_entries = table_entries  # type: ignore[method-assign]
    applier(store, truncations=log).apply([located(ORDERS, event(ORDERS, "t", None, ts=100))])
    assert listed_after == [{("core", ORDER): 100}]
    assert _row(store, "o1", "c1") is None
