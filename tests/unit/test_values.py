"""Typed cells round-trip exactly and render to the documented JSON contract."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from scv.contracts.cells import (
    AttributeValue,
    CellDecodeError,
    Json,
    TextForm,
    cell_to_json,
    decode_value,
    encode_value,
    to_json_compatible,
)

CASES: list[tuple[AttributeValue, object]] = [
    (None, None),
    (True, True),
    (False, False),
    (42, 42),
    (-7, -7),
    (1.5, 1.5),
    (Decimal("12.30"), "12.30"),
    (Decimal("-0.000001"), "-0.000001"),
    (Decimal("123456789012345678.99"), "123456789012345678.99"),
    ("héllo: world", "héllo: world"),
    ("", ""),
    (datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-03-01T10:00:00.123456+00:00"),
    (
        datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        "2024-03-01T10:00:00+02:00",
    ),
    (datetime(2024, 3, 1, 10, 0, 0, 5), "2024-03-01T10:00:00.000005"),
    (date(1999, 12, 31), "1999-12-31"),
    (time(23, 59, 58, 1), "23:59:58.000001"),
    (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (Json('{"b": 1, "a": [1, 2.50]}'), {"b": 1, "a": [1, Decimal("2.50")]}),
    (["a", "b"], ["a", "b"]),
    ([Decimal("1.10"), None], ["1.10", None]),
    (b"\x00\xff", "AP8="),
    (TextForm("timestamp", "infinity"), "infinity"),
    (TextForm("date", "+10000-01-01"), "+10000-01-01"),
    (TextForm("interval", "P1Y2M3DT4H5M6.789S"), "P1Y2M3DT4H5M6.789S"),
    (float("inf"), "Infinity"),
    (Decimal("-Infinity"), "-Infinity"),
]


@pytest.mark.parametrize(("value", "rendered"), CASES)
def test_cell_round_trip_keeps_type_and_value(value: AttributeValue, rendered: object) -> None:
    decoded = decode_value(encode_value(value))
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(("value", "rendered"), CASES)
def test_json_rendering_follows_read_contract(value: AttributeValue, rendered: object) -> None:
    if isinstance(value, Json):
        assert to_json_compatible(value) == {"b": 1, "a": [1, 2.5]}
    else:
        assert to_json_compatible(value) == rendered


@pytest.mark.parametrize(("value", "rendered"), CASES)
def test_cells_render_to_json_directly_as_the_typed_value_does(
    value: AttributeValue, rendered: object
) -> None:
    cell = encode_value(value)
    assert cell_to_json(cell) == to_json_compatible(decode_value(cell))


def test_json_arrays_of_documents_render_embedded() -> None:
    cell = encode_value([Json('{"x": 1.5}'), None])
    assert cell_to_json(cell) == [{"x": 1.5}, None] == to_json_compatible(decode_value(cell))


def test_decimal_keeps_trailing_zeros() -> None:
    assert str(decode_value(encode_value(Decimal("10.00")))) == "10.00"


def test_null_is_distinct_from_empty_string() -> None:
    assert encode_value(None) != encode_value("")


@pytest.mark.parametrize("cell", ["noseparator", "z:unknown", "i:notanint", "d:2024-13-45"])
def test_malformed_cells_raise_cell_decode_error(cell: str) -> None:
    if cell != "d:2024-13-45":  # a date's text is rendered as stored: only decoding parses it
        with pytest.raises(CellDecodeError):
            cell_to_json(cell)
    with pytest.raises(CellDecodeError):
        decode_value(cell)
