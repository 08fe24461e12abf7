"""The writer's direct serializers produce exactly the driver's bytes, type by type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cassandra import cqltypes

from store.binding import serializer_for

TEXT_MAP = cqltypes.MapType.apply_parameters([cqltypes.UTF8Type, cqltypes.UTF8Type])
# What the server reports for a map<text, text> column of a prepared statement.
VARCHAR_MAP = cqltypes.MapType.apply_parameters([cqltypes.VarcharType, cqltypes.VarcharType])


@pytest.mark.parametrize(
    ("cql_type", "value"),
    [
        (cqltypes.UTF8Type, "plain"),
        (cqltypes.UTF8Type, "àèìòù — 客户 🙂"),
        (cqltypes.UTF8Type, ""),
        (cqltypes.VarcharType, "varchar"),
        (cqltypes.LongType, 1_796_158_000_123_456),
        (cqltypes.LongType, -1),
        (cqltypes.Int32Type, 255),
        (cqltypes.Int32Type, -(2**31)),
        (cqltypes.DateType, datetime(2026, 12, 1, 21, 35, 7, 123456, tzinfo=UTC)),
        (cqltypes.DateType, datetime(2026, 12, 1, 23, 35, 7, 999999, tzinfo=timezone(timedelta(hours=2)))),
        (cqltypes.DateType, datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)),
        (cqltypes.DateType, datetime(2026, 12, 1, 21, 35, 7, 1000)),  # naive: read as UTC
        (TEXT_MAP, {"balance": "n:-390.56", "note": 'j:{"a": [1, 2]}', "é": ""}),
        (TEXT_MAP, {}),
        (VARCHAR_MAP, {"balance": "n:-390.56", "客户": "s:🙂"}),
    ],
)
def test_direct_serializer_matches_the_driver(cql_type: Any, value: Any) -> None:
    assert serializer_for(cql_type, 4)(value) == cql_type.serialize(value, 4)


def test_other_types_fall_back_to_the_driver() -> None:
    uuid_type = cqltypes.UUIDType
    serialize = serializer_for(uuid_type, 4)
    value = __import__("uuid").UUID("12345678-1234-5678-1234-567812345678")
    assert serialize(value) == uuid_type.serialize(value, 4)


@pytest.mark.parametrize(
    "cql_type",
    [cqltypes.VarcharType, cqltypes.LongType, cqltypes.Int32Type, cqltypes.DateType, VARCHAR_MAP],
    ids=lambda t: t.cql_parameterized_type(),
)
def test_every_column_type_the_writer_binds_has_a_direct_serializer(cql_type: Any) -> None:
    # The types as a prepared statement's metadata describes the writer's columns (store/writer.py).
    assert serializer_for(cql_type, 4).__name__ != "by_driver"
