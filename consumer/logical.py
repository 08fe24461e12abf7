"""Debezium / Kafka Connect semantic types -> typed Python values, compiled once per writer schema.

Debezium encodes PostgreSQL types as Avro primitives tagged with ``connect.name`` (e.g. a date is an
``int`` named ``io.debezium.time.Date``). Walking the schema for every record is slow, so each
schema id gets a converter tree built once (``compile_converter``) and applied to every record.

Unchanged TOASTed columns arrive as Debezium's placeholder (``__debezium_unavailable_value``, as a
string, its bytes, or an array holding it); they become ``UNAVAILABLE`` so the planner can merge
instead of overwriting the stored value with the placeholder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from scv.contracts.cells import Json

__all__ = ["PLACEHOLDER", "UNAVAILABLE", "Converter", "compile_converter"]

Converter = Callable[[Any], Any]

# Debezium's default `unavailable.value.placeholder`; the connector renderer keeps the default.
PLACEHOLDER: Final = "__debezium_unavailable_value"
_PLACEHOLDER_BYTES: Final = PLACEHOLDER.encode()
_EPOCH: Final = date(1970, 1, 1)
_EPOCH_DT: Final = datetime(1970, 1, 1)


class _Unavailable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = _Unavailable()


def _decimal_from_bytes(raw: bytes, scale: int) -> Decimal:
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def _variable_scale(value: dict[str, Any]) -> Decimal:
    return _decimal_from_bytes(value["value"], int(value["scale"]))


def _micro_time(micros: int) -> time:
    return (_EPOCH_DT + timedelta(microseconds=micros)).time()


def _semantic(name: str, schema: dict[str, Any]) -> Converter | None:
    """Converter for one Connect/Debezium semantic type name, or None when the value is used as is."""
    match name:
        case "io.debezium.time.Date":
            return lambda v: v if isinstance(v, date) else _EPOCH + timedelta(days=v)
        case "io.debezium.time.Time":
            return lambda v: v if isinstance(v, time) else _micro_time(v * 1000)
        case "io.debezium.time.MicroTime":
            return lambda v: v if isinstance(v, time) else _micro_time(v)
        case "io.debezium.time.NanoTime":
            return lambda v: v if isinstance(v, time) else _micro_time(v // 1000)
        case "io.debezium.time.Timestamp":
            return lambda v: v if isinstance(v, datetime) else _EPOCH_DT + timedelta(milliseconds=v)
        case "io.debezium.time.MicroTimestamp":
            return lambda v: v if isinstance(v, datetime) else _EPOCH_DT + timedelta(microseconds=v)
        case "io.debezium.time.NanoTimestamp":
            return lambda v: v if isinstance(v, datetime) else _EPOCH_DT + timedelta(microseconds=v // 1000)
        case "io.debezium.time.ZonedTimestamp":
            return datetime.fromisoformat
        case "io.debezium.time.ZonedTime":
            return time.fromisoformat
        case "io.debezium.data.Uuid":
            return UUID
        case "io.debezium.data.Json":
            return Json
        case "io.debezium.data.VariableScaleDecimal":
            return _variable_scale
        case "org.apache.kafka.connect.data.Decimal":
            params = schema.get("connect.parameters") or {}
            scale = int(params.get("scale", schema.get("scale", 0)))
            return lambda v: v if isinstance(v, Decimal) else _decimal_from_bytes(v, scale)
        case "org.apache.kafka.connect.data.Timestamp":
            return lambda v: v if isinstance(v, datetime) else datetime.fromtimestamp(v / 1000, UTC)
        case "org.apache.kafka.connect.data.Date":
            return lambda v: v if isinstance(v, date) else _EPOCH + timedelta(days=v)
    return None


def _guard_placeholder(convert: Converter) -> Converter:
    def guarded(value: Any) -> Any:
        if value is None:
            return None
        if value in (PLACEHOLDER, _PLACEHOLDER_BYTES):
            return UNAVAILABLE
        if isinstance(value, list) and value and (value[0] == PLACEHOLDER or value[0] == _PLACEHOLDER_BYTES):
            return UNAVAILABLE
        return convert(value)

    return guarded


def _identity(value: Any) -> Any:
    return value


def compile_converter(schema: Any) -> Converter:
    """Build the converter for an Avro schema (the JSON form the registry returns)."""
    return _compile(schema, named={})


def _compile(schema: Any, named: dict[str, Converter]) -> Converter:
    if isinstance(schema, str):
        return named.get(schema, _identity)
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) == 1:
            inner = _compile(branches[0], named)
            return lambda v: None if v is None else inner(v)
        return _identity  # multi-type unions are not produced by Debezium for row columns
    if not isinstance(schema, dict):
        return _identity
    kind = schema.get("type")
    connect_name = schema.get("connect.name")
    if kind == "record" and connect_name != "io.debezium.data.VariableScaleDecimal":
        fields = [(f["name"], _field(f["type"], named)) for f in schema.get("fields", [])]
        converter: Converter = lambda v: {name: conv(v.get(name)) for name, conv in fields}  # noqa: E731
        if "name" in schema:
            named[schema["name"]] = converter
        return converter
    if kind == "array":
        item = _compile(schema.get("items"), named)
        return lambda v: [item(x) for x in v]
    if isinstance(kind, dict | list):
        return _compile(kind, named)
    semantic = _semantic(connect_name, schema) if connect_name else None
    return semantic or _identity


def _field(field_schema: Any, named: dict[str, Converter]) -> Converter:
    # Column values (record fields) are where Debezium may put the unavailable placeholder.
    return _guard_placeholder(_compile(field_schema, named))
