"""Debezium semantic types decode to typed Python values; TOAST placeholders are recognised."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from consumer.logical import PLACEHOLDER, UNAVAILABLE, compile_converter
from scv.contracts.cells import Json


def _record(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "Value", "fields": [{"name": "col", "type": ["null", field_type]}]}


def _named(type_name: str, connect_name: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_name, "connect.name": connect_name, **extra}


CASES = [
    (_named("int", "io.debezium.time.Date"), 19783, date(2024, 3, 1)),
    (_named("long", "io.debezium.time.MicroTime"), 3_600_000_001, time(1, 0, 0, 1)),
    (_named("long", "io.debezium.time.MicroTimestamp"), 1_000_001, datetime(1970, 1, 1, 0, 0, 1, 1)),
    (
        _named("string", "io.debezium.time.ZonedTimestamp"),
        "2024-03-01T10:00:00.123456Z",
        datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),
    ),
    (
        _named("string", "io.debezium.data.Uuid"),
        "12345678-1234-5678-1234-567812345678",
        UUID("12345678-1234-5678-1234-567812345678"),
    ),
    (_named("string", "io.debezium.data.Json"), '{"a": 1}', Json('{"a": 1}')),
    (_named("string", "io.debezium.data.Enum"), "gold", "gold"),
    (
        _named("bytes", "org.apache.kafka.connect.data.Decimal", **{"connect.parameters": {"scale": "2"}}),
        (1230).to_bytes(2, "big"),
        Decimal("12.30"),
    ),
    (
        _named("bytes", "org.apache.kafka.connect.data.Decimal", **{"connect.parameters": {"scale": "2"}}),
        (-5).to_bytes(1, "big", signed=True),
        Decimal("-0.05"),
    ),
    (
        {
            "type": "record",
            "name": "VariableScaleDecimal",
            "connect.name": "io.debezium.data.VariableScaleDecimal",
            "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
        },
        {"scale": 3, "value": (12345).to_bytes(2, "big")},
        Decimal("12.345"),
    ),
    ({"type": "array", "items": "string"}, ["a", "b"], ["a", "b"]),
    ("boolean", True, True),
]


@pytest.mark.parametrize(("field_type", "raw", "expected"), CASES)
def test_semantic_types_decode_to_typed_values(field_type: Any, raw: Any, expected: Any) -> None:
    convert = compile_converter(_record(field_type))
    assert convert({"col": raw}) == {"col": expected}


def test_null_stays_none() -> None:
    convert = compile_converter(_record(_named("int", "io.debezium.time.Date")))
    assert convert({"col": None}) == {"col": None}


@pytest.mark.parametrize(
    ("field_type", "raw"),
    [
        ("string", PLACEHOLDER),
        ("bytes", PLACEHOLDER.encode()),
        ({"type": "array", "items": "string"}, [PLACEHOLDER]),
        (_named("string", "io.debezium.data.Json"), PLACEHOLDER),
    ],
)
def test_unavailable_toast_placeholder_becomes_unavailable(field_type: Any, raw: Any) -> None:
    convert = compile_converter(_record(field_type))
    assert convert({"col": raw})["col"] is UNAVAILABLE


def test_nested_envelope_converts_after_image() -> None:
    value_schema = _record(_named("int", "io.debezium.time.Date"))
    envelope = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", value_schema]},
            {"name": "after", "type": ["null", "Value"]},
            {"name": "op", "type": "string"},
        ],
    }
    convert = compile_converter(envelope)
    out = convert({"before": None, "after": {"col": 1}, "op": "c"})
    assert out == {"before": None, "after": {"col": date(1970, 1, 2)}, "op": "c"}
