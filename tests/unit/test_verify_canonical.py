"""The verifier's canonical texts: equal values render alike, whatever their spelling or scale."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from scv.contracts.cells import AttributeValue, Json
from scv.verify.canonical import ABSENT_CELL, bucket_of, canonical, canonical_sql, key_hash, row_hash

CASES: list[tuple[AttributeValue, str | None]] = [
    (None, None),
    (True, "true"),
    (False, "false"),
    (42, "42"),
    (Decimal("10.5000"), "10.5"),
    (Decimal("100"), "100"),
    (Decimal("1.23E-19"), "0.000000000000000000123"),
    (Decimal("-0.00"), "0"),
    (Decimal("NaN"), "NaN"),
    ("ab  ", "ab  "),
    (date(1990, 2, 28), "1990-02-28"),
    (
        datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        "2024-03-01T08:00:00.123456",
    ),
    (datetime(2024, 3, 1, 10, 0), "2024-03-01T10:00:00.000000"),
    (time(9, 5, 1, 500000), "09:05:01.500000"),
    (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (Json('{"a": 1}'), '{"a": 1}'),
    (b"\x00\xff", "00ff"),
]


@pytest.mark.parametrize(("value", "text"), CASES)
def test_canonical_text_of_each_type(value: AttributeValue, text: str | None) -> None:
    assert canonical(value) == text


def test_arrays_hash_each_element_in_order() -> None:
    assert canonical(["a", None]) == "0cc175b9c0f1b6a831c399e269772661,N"
    assert canonical(["a", None]) != canonical([None, "a"])


def test_the_same_instant_in_two_zones_is_one_value() -> None:
    utc = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert canonical(utc) == canonical(utc.astimezone(timezone(timedelta(hours=-5))))


def test_a_missing_cell_counts_as_null() -> None:
    assert row_hash([ABSENT_CELL, 1]) == row_hash([None, 1])
    assert row_hash([ABSENT_CELL, 1]) != row_hash(["", 1])


def test_key_hash_and_bucket_are_stable() -> None:
    key = key_hash([42])
    assert key == key_hash([Decimal("42")])
    assert 0 <= bucket_of(key, 4096) < 4096


def test_sql_keeps_char_padding_and_nulls() -> None:
    assert "concat(" in canonical_sql('"code"', "character(4)")
    assert canonical_sql('"tags"', "text[]").startswith('CASE WHEN "tags" IS NOT NULL')
