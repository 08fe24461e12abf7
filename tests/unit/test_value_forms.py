"""Every legal PostgreSQL value decodes: one table per Debezium logical type, raw values as Debezium 3.5
sends them (read from records on the local stack), expected as the view stores them."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from consumer.exceptions import DecodeError
from consumer.logical import compile_converter
from scv.contracts.cells import Json, TextForm, cell_to_json, decode_value, encode_value, to_json_compatible

_SOURCE_TYPE = "__debezium.source.column.type"


def _column(field_type: Any) -> Any:
    convert = compile_converter(
        {"type": "record", "name": "Value", "fields": [{"name": "col", "type": ["null", field_type]}]}
    )
    return lambda raw: convert({"col": raw})["col"]


def _typed(avro: str, source_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": avro, "connect.parameters": {_SOURCE_TYPE: source_type}, **extra}


def _named(avro: str, connect_name: str, **params: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": avro, "connect.name": connect_name}
    if params:
        schema["connect.parameters"] = params
    return schema


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Decimal) and expected.is_nan():
        return isinstance(actual, Decimal) and actual.is_nan()
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (19783, date(2024, 3, 1)),
        (-719162, date(1, 1, 1)),
        (2932896, date(9999, 12, 31)),
        (2932897, TextForm("date", "+10000-01-01")),
        (2145042905, TextForm("date", "+5874897-12-31")),
        (-2440550, TextForm("date", "-4712-01-01")),  # 4713 BC, streamed
        (-719163, TextForm("date", "0000-12-31")),  # 1 BC
        (-2147472692, TextForm("date", "infinity")),  # streamed
        (-2147472691, TextForm("date", "-infinity")),
        (-622191234, TextForm("date", "infinity")),  # snapshot, arrays
        (-625821272, TextForm("date", "-infinity")),
    ],
)
def test_date_values(raw: int, expected: Any) -> None:
    assert _same(_column(_named("int", "io.debezium.time.Date"))(raw), expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1709287872123456, datetime(2024, 3, 1, 10, 11, 12, 123456)),
        (253402300800000000, TextForm("timestamp", "+10000-01-01T00:00:00")),
        (-210863520000000000, TextForm("timestamp", "-4712-01-01T00:00:00")),
        (-62135596800000000 - 1, TextForm("timestamp", "0000-12-31T23:59:59.999999")),
        (9223372036825200000, TextForm("timestamp", "infinity")),
        (-9223372036832400000, TextForm("timestamp", "-infinity")),
        # Debezium overflows near PostgreSQL's maximum (294276-12-31): kept as the number it sent.
        (
            -9223372036853775810,
            TextForm("timestamp", "out of range: -9223372036853775810 microseconds from 1970-01-01"),
        ),
    ],
)
def test_micro_timestamp_values(raw: int, expected: Any) -> None:
    assert _same(_column(_named("long", "io.debezium.time.MicroTimestamp"))(raw), expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1709287872123, datetime(2024, 3, 1, 10, 11, 12, 123000)),
        (9223372036825200, TextForm("timestamp", "infinity")),
        (-9223372036832400, TextForm("timestamp", "-infinity")),
        (253402300800000, TextForm("timestamp", "+10000-01-01T00:00:00")),
    ],
)
def test_milli_timestamp_values(raw: int, expected: Any) -> None:
    assert _same(_column(_named("long", "io.debezium.time.Timestamp"))(raw), expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01T08:11:12.123456Z", datetime(2024, 3, 1, 8, 11, 12, 123456, tzinfo=UTC)),
        ("infinity", TextForm("timestamptz", "infinity")),
        ("-infinity", TextForm("timestamptz", "-infinity")),
        ("+10000-01-01T00:00:00.000000Z", TextForm("timestamptz", "+10000-01-01T00:00:00.000000+00:00")),
        ("-4712-01-01T00:00:00.000000Z", TextForm("timestamptz", "-4712-01-01T00:00:00.000000+00:00")),
        ("0000-12-30T00:00:00.000000Z", TextForm("timestamptz", "0000-12-30T00:00:00.000000+00:00")),
        # -infinity inside a timestamptz array.
        ("+292269055-12-02T23:00:00.000000Z", TextForm("timestamptz", "-infinity")),
    ],
)
def test_zoned_timestamp_values(raw: str, expected: Any) -> None:
    assert _same(_column(_named("string", "io.debezium.time.ZonedTimestamp"))(raw), expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (36672123456, time(10, 11, 12, 123456)),
        (0, time(0)),
        (86399999999, time(23, 59, 59, 999999)),
        (86400000000, TextForm("time", "24:00:00")),
    ],
)
def test_micro_time_values(raw: int, expected: Any) -> None:
    assert _same(_column(_named("long", "io.debezium.time.MicroTime"))(raw), expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("08:11:12Z", time(8, 11, 12, tzinfo=UTC)), ("24:00:00Z", TextForm("timetz", "24:00:00Z"))],
)
def test_zoned_time_values(raw: str, expected: Any) -> None:
    assert _same(_column(_named("string", "io.debezium.time.ZonedTime"))(raw), expected)


@pytest.mark.parametrize("raw", ["P1Y2M3DT4H5M6.789S", "P-178000000Y0M0DT0H0M0S", "P0Y0M0DT0H0M0.000001S"])
def test_interval_values(raw: str) -> None:
    assert _column(_named("string", "io.debezium.time.Interval"))(raw) == TextForm("interval", raw)


@pytest.mark.parametrize(
    ("source_type", "raw", "expected"),
    [
        ("NUMERIC", "12.345", Decimal("12.345")),
        ("NUMERIC", "1.50", Decimal("1.50")),
        ("NUMERIC", "0.0", Decimal("0.0")),
        ("NUMERIC", "1" + "0" * 100, Decimal("1" + "0" * 100)),
        ("NUMERIC", "0." + "0" * 99 + "1", Decimal("1E-100")),
        ("NUMERIC", "NAN", Decimal("NaN")),
        ("NUMERIC", "POSITIVE_INFINITY", Decimal("Infinity")),
        ("NUMERIC", "NEGATIVE_INFINITY", Decimal("-Infinity")),
        ("MONEY", "92233720368547758.07", Decimal("92233720368547758.07")),
        ("MONEY", "-92233720368547758.08", Decimal("-92233720368547758.08")),
        ("TEXT", "12.345", "12.345"),  # text stays text
    ],
)
def test_numeric_text_values(source_type: str, raw: str, expected: Any) -> None:
    assert _same(_column(_typed("string", source_type))(raw), expected)


def test_numeric_without_source_type_stays_text() -> None:
    # A schema registered before datatype.propagate.source.type: nothing says the text is a number.
    assert _column("string")("12.345") == "12.345"


@pytest.mark.parametrize(
    ("schema", "raw", "expected"),
    [
        (
            {
                "type": "record",
                "name": "VariableScaleDecimal",
                "namespace": "io.debezium.data",
                "connect.name": "io.debezium.data.VariableScaleDecimal",
                "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
            },
            {"scale": 100, "value": b"\x01"},
            Decimal("1E-100"),
        ),
        (
            _named("bytes", "org.apache.kafka.connect.data.Decimal", scale="2"),
            (1234).to_bytes(2, "big"),
            Decimal("12.34"),
        ),
    ],
)
def test_precise_decimal_values_of_existing_topics(schema: Any, raw: Any, expected: Decimal) -> None:
    assert _same(_column(schema)(raw), expected)


def test_variable_scale_decimal_referenced_by_name_in_an_array() -> None:
    vsd = {
        "type": "record",
        "name": "VariableScaleDecimal",
        "namespace": "io.debezium.data",
        "connect.name": "io.debezium.data.VariableScaleDecimal",
        "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
    }
    convert = compile_converter(
        {
            "type": "record",
            "name": "Value",
            "fields": [
                {"name": "n", "type": ["null", vsd]},
                {
                    "name": "ns",
                    "type": [
                        "null",
                        {"type": "array", "items": ["null", "io.debezium.data.VariableScaleDecimal"]},
                    ],
                },
            ],
        }
    )
    row = convert({"n": {"scale": 1, "value": b"\x0f"}, "ns": [{"scale": 2, "value": b"\x96"}, None]})
    assert row == {"n": Decimal("1.5"), "ns": [Decimal("-1.06"), None]}


@pytest.mark.parametrize(
    ("length", "raw", "expected"),
    [
        ("8", b"\xa1", "10100001"),
        ("16", (0x8001).to_bytes(2, "little"), "1000000000000001"),
        ("3", b"\x01", "001"),
        ("2147483647", b"\x05", "101"),  # varbit: no length, leading zeros not known
    ],
)
def test_bit_string_values(length: str, raw: bytes, expected: str) -> None:
    assert _column(_named("bytes", "io.debezium.data.Bits", length=length))(raw) == expected


_POINT = {
    "type": "record",
    "name": "Point",
    "namespace": "io.debezium.data.geometry",
    "connect.name": "io.debezium.data.geometry.Point",
    "fields": [
        {"name": "x", "type": "double"},
        {"name": "y", "type": "double"},
        {"name": "wkb", "type": ["null", "bytes"]},
        {"name": "srid", "type": ["null", "int"]},
    ],
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"x": 1.5, "y": 2.5, "wkb": b"\x01", "srid": None}, "(1.5,2.5)"),
        ({"x": -0.0, "y": 1e-05, "wkb": None, "srid": None}, "(-0.0,1e-05)"),
        ({"x": float("inf"), "y": float("nan"), "wkb": None, "srid": None}, "(Infinity,NaN)"),
    ],
)
def test_point_values(raw: dict[str, Any], expected: str) -> None:
    assert _column(_POINT)(raw) == expected


@pytest.mark.parametrize(
    ("source_type", "raw", "expected"),
    [
        ("BOX", b"(1.0,1.0),(0.0,0.0)", "(1.0,1.0),(0.0,0.0)"),
        ("LINE", b"{1.0,-1.0,0.0}", "{1.0,-1.0,0.0}"),
        ("CIRCLE", b"<(0.0,0.0),2.0>", "<(0.0,0.0),2.0>"),
        ("INT4MULTIRANGE", b"{[1,3),[5,7)}", "{[1,3),[5,7)}"),
        ("TSQUERY", b"'fat' & 'rat'", "'fat' & 'rat'"),
        ("PG_LSN", b"16/B374D848", "16/B374D848"),
        ("BYTEA", b"\x00\xff", b"\x00\xff"),
    ],
)
def test_unknown_type_values_arrive_as_their_text(source_type: str, raw: bytes, expected: Any) -> None:
    assert _same(_column(_typed("bytes", source_type))(raw), expected)


def test_bytes_without_source_type_stay_bytes() -> None:
    assert _column("bytes")(b"\x00\xff") == b"\x00\xff"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('{"k":"v","n":null}', Json('{"k":"v","n":null}')), ("{}", Json("{}"))],
)
def test_hstore_values(raw: str, expected: Json) -> None:
    assert _column(_named("string", "io.debezium.data.Json"))(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(1.5, 1.5), (float("nan"), float("nan")), (float("-inf"), float("-inf"))]
)
def test_float_values(raw: float, expected: float) -> None:
    assert _same(_column("double")(raw), expected)


@pytest.mark.parametrize(
    ("schema", "raw", "expected"),
    [
        (
            _typed("array", "_NUMERIC", items=["null", "string"]),
            ["1.5", "NAN", None],
            [Decimal("1.5"), Decimal("NaN"), None],
        ),
        (_typed("array", "_EMAIL", items="bytes"), [b"a@b"], ["a@b"]),  # array of a domain
        (_typed("array", "_BYTEA", items=["null", "bytes"]), [b"\x01"], [b"\x01"]),
        (
            {"type": "array", "items": ["null", _named("int", "io.debezium.time.Date")]},
            [19723, -622191234, 2932897],
            [date(2024, 1, 1), TextForm("date", "infinity"), TextForm("date", "+10000-01-01")],
        ),
        (
            {"type": "array", "items": ["null", _named("string", "io.debezium.time.ZonedTimestamp")]},
            ["infinity", "+292269055-12-02T23:00:00.000000Z"],
            [TextForm("timestamptz", "infinity"), TextForm("timestamptz", "-infinity")],
        ),
        (_typed("array", "_INT4RANGE", items=["null", "string"]), ["[1,3)"], ["[1,3)"]),
    ],
)
def test_array_values(schema: Any, raw: list[Any], expected: list[Any]) -> None:
    actual = _column(schema)(raw)
    assert len(actual) == len(expected)
    assert all(_same(a, e) for a, e in zip(actual, expected, strict=True))


def test_unknown_struct_column_is_kept_as_json() -> None:
    geometry = {
        "type": "record",
        "name": "Geometry",
        "namespace": "io.debezium.data.geometry",
        "connect.name": "io.debezium.data.geometry.Geometry",
        "fields": [{"name": "wkb", "type": "bytes"}, {"name": "srid", "type": ["null", "int"]}],
    }
    value = _column(geometry)({"wkb": b"\x01\x02", "srid": 4326})
    assert isinstance(value, Json)
    assert value.parsed() == {"srid": 4326, "wkb": "AQI="}


def test_a_value_that_cannot_be_converted_names_its_column() -> None:
    convert = compile_converter(
        {
            "type": "record",
            "name": "Value",
            "fields": [
                {"name": "ok", "type": "string"},
                {"name": "ref", "type": _named("string", "io.debezium.data.Uuid")},
            ],
        }
    )
    with pytest.raises(DecodeError, match="column ref: cannot convert 'not-a-uuid'"):
        convert({"ok": "x", "ref": "not-a-uuid"})


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (TextForm("timestamp", "infinity"), "infinity"),
        (TextForm("date", "+10000-01-01"), "+10000-01-01"),
        (TextForm("interval", "P1Y2M3DT4H5M6.789S"), "P1Y2M3DT4H5M6.789S"),
        (Decimal("NaN"), "NaN"),
        (Decimal("-Infinity"), "-Infinity"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
    ],
)
def test_special_values_round_trip_through_cells_and_render_as_json_strings(
    value: Any, rendered: str
) -> None:
    assert _same(decode_value(encode_value(value)), value)
    assert to_json_compatible(value) == rendered
    assert cell_to_json(encode_value(value)) == rendered
