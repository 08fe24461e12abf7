"""The Debezium envelope -> ChangeEvent, and the write-timestamp rule the convergence argument rests on."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.envelope import to_change_event, write_timestamp
from consumer.exceptions import DecodeError
from consumer.logical import UNAVAILABLE


def envelope(op: str = "u", **source: Any) -> dict[str, Any]:
    info = {"schema": "public", "table": "customers", "ts_ms": 1_700_000_000_123, **source}
    return {
        "op": op,
        "source": info,
        "before": None,
        "after": {"customer_id": 7, "name": "Ada"} if op != "d" else None,
    }


def test_write_timestamp_is_the_commit_time_in_microseconds() -> None:
    assert (
        write_timestamp({"ts_us": 1_700_000_000_123_456, "ts_ms": 1_700_000_000_123}) == 1_700_000_000_123_456
    )


def test_write_timestamp_falls_back_to_milliseconds_times_1000() -> None:
    assert write_timestamp({"ts_ms": 1_700_000_000_123}) == 1_700_000_000_123_000


def test_write_timestamp_ignores_a_zero_microsecond_field() -> None:
    assert write_timestamp({"ts_us": 0, "ts_ms": 5}) == 5_000


def test_write_timestamp_without_any_time_is_not_a_debezium_event() -> None:
    with pytest.raises(DecodeError, match="neither ts_us nor ts_ms"):
        write_timestamp({"ts_us": None})


def test_later_commit_has_the_later_write_timestamp() -> None:
    # The rule's premise: two transactions on one row commit in order, and so do their timestamps.
    first = to_change_event("crm", None, envelope(ts_us=1_000_000))
    second = to_change_event("crm", None, envelope(ts_us=1_000_001))
    assert first.write_ts < second.write_ts


def test_snapshot_read_carries_the_snapshot_marker_and_its_time() -> None:
    event = to_change_event("crm", None, envelope("r", snapshot="true", ts_us=42_000_000))
    assert event.snapshot == "true"
    assert event.write_ts == 42_000_000


def test_streamed_change_has_no_snapshot_marker() -> None:
    assert to_change_event("crm", None, envelope(snapshot="false")).snapshot is None


def test_table_is_schema_qualified() -> None:
    assert to_change_event("crm", None, envelope()).table == "public.customers"


def test_unavailable_toast_columns_leave_the_after_image() -> None:
    value = envelope()
    value["after"] = {"customer_id": 7, "notes": UNAVAILABLE}
    event = to_change_event("crm", None, value)
    assert event.after == {"customer_id": 7}
    assert event.unavailable == frozenset({"notes"})


@pytest.mark.parametrize("op", ["x", None, ""])
def test_unknown_op_is_not_a_change_event(op: Any) -> None:
    value = envelope()
    value["op"] = op
    with pytest.raises(DecodeError, match="not a Debezium change event"):
        to_change_event("crm", None, value)


def test_source_block_without_table_is_refused() -> None:
    value = envelope()
    del value["source"]["table"]
    with pytest.raises(DecodeError, match="schema/table"):
        to_change_event("crm", None, value)
