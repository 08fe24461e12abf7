"""Debezium / Kafka Connect semantic types -> typed Python values, compiled once per writer schema.

Debezium encodes PostgreSQL types as Avro primitives tagged with ``connect.name`` (e.g. a date is an
``int`` named ``io.debezium.time.Date``). Walking the schema for every record is slow, so each
schema id gets a converter tree built once (``compile_converter``) and applied to every record.

Every legal PostgreSQL value has a form (README, "Value forms"; the connector settings that make
Debezium carry them are in connectors/render.py): NUMERIC and MONEY arrive as text
(``decimal.handling.mode=string``, the only mode that keeps ``NaN``, ``±Infinity`` and MONEY's full
range) and become ``Decimal``; types Debezium has no mapping for arrive as the bytes of their text
form (``include.unknown.datatypes``) and become ``str``; the column's source type
(``datatype.propagate.source.type`` puts it in the schema) tells those apart from ``bytea`` and from
plain text. Dates, timestamps and times outside Python's range become a ``TextForm``
(consumer/temporal.py). A value that cannot be converted raises ``DecodeError`` naming the column:
the record is parked, never the process stopped.

Unchanged TOASTed columns arrive as Debezium's placeholder (``__debezium_unavailable_value``, as a
string, its bytes, or an array holding it); they become ``UNAVAILABLE`` so the planner can merge
instead of overwriting the stored value with the placeholder.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from consumer.exceptions import DecodeError
from consumer.temporal import (
    date_from_days,
    time_from_micros,
    timestamp_from_micros,
    timestamp_from_millis,
    zoned_time,
    zoned_timestamp,
)
from scv.contracts.cells import Json, TextForm

__all__ = ["PLACEHOLDER", "UNAVAILABLE", "Converter", "compile_converter"]

Converter = Callable[[Any], Any]

# Debezium's default `unavailable.value.placeholder`; the connector renderer keeps the default.
PLACEHOLDER: Final = "__debezium_unavailable_value"
_PLACEHOLDER_BYTES: Final = PLACEHOLDER.encode()
_SOURCE_TYPE: Final = "__debezium.source.column.type"
# Source types Debezium sends as text under decimal.handling.mode=string.
_DECIMAL_TYPES: Final = frozenset({"NUMERIC", "DECIMAL", "MONEY"})
# Debezium's names for NUMERIC's special values in string mode.
_SPECIAL_DECIMALS: Final = {
    "NAN": Decimal("NaN"),
    "POSITIVE_INFINITY": Decimal("Infinity"),
    "NEGATIVE_INFINITY": Decimal("-Infinity"),
}


class _Unavailable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = _Unavailable()


def _decimal_from_bytes(raw: bytes, scale: int) -> Decimal:
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def _variable_scale(value: dict[str, Any]) -> Decimal:
    return _decimal_from_bytes(value["value"], int(value["scale"]))


def _decimal_text(value: str | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    special = _SPECIAL_DECIMALS.get(value)
    return special if special is not None else Decimal(value)


def _float_text(value: float) -> str:
    # PostgreSQL's float8out: shortest round-trip digits (as Python's repr), its own special words.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _point(value: dict[str, Any]) -> str:
    """``io.debezium.data.geometry.Point`` -> PostgreSQL's text form of a point, ``(x,y)``."""
    return f"({_float_text(value['x'])},{_float_text(value['y'])})"


def _bits(length: int | None) -> Converter:
    """``io.debezium.data.Bits``: the bits as an unsigned little-endian integer -> ``'10100001'``.

    ``bit(n)`` keeps its n digits; for ``varbit`` Debezium sends no length, so leading zeros are
    lost (README, "Value forms")."""

    def convert(raw: bytes) -> str:
        number = int.from_bytes(raw, "little")
        return format(number, f"0{length}b") if length else format(number, "b")

    return convert


def _text_of_bytes(raw: bytes | str) -> str:
    # The type's text output, as PostgreSQL wrote it (UTF-8 on the replication connection).
    return raw if isinstance(raw, str) else raw.decode("utf-8")


def _struct_as_json(value: dict[str, Any]) -> Json:
    """A struct no mapping knows (e.g. a PostGIS geometry's {wkb, srid}), kept whole as JSON."""

    def plain(item: Any) -> Any:
        if isinstance(item, bytes):
            return base64.b64encode(item).decode("ascii")
        if isinstance(item, dict):
            return {k: plain(v) for k, v in item.items()}
        if isinstance(item, list):
            return [plain(v) for v in item]
        return item

    return Json(json.dumps(plain(value), sort_keys=True))


def _parameters(schema: dict[str, Any]) -> dict[str, Any]:
    params = schema.get("connect.parameters")
    return params if isinstance(params, dict) else {}


def _semantic(name: str, schema: dict[str, Any]) -> Converter | None:
    """Converter for one Connect/Debezium semantic type name, or None when the value is used as is."""
    match name:
        case "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date":
            return date_from_days
        case "io.debezium.time.Time":
            return lambda v: time_from_micros(v * 1000)
        case "io.debezium.time.MicroTime":
            return time_from_micros
        case "io.debezium.time.NanoTime":
            return lambda v: time_from_micros(v // 1000)
        case "io.debezium.time.Timestamp":
            return timestamp_from_millis
        case "io.debezium.time.MicroTimestamp":
            return timestamp_from_micros
        case "io.debezium.time.NanoTimestamp":
            return lambda v: timestamp_from_micros(v // 1000)
        case "io.debezium.time.ZonedTimestamp":
            return zoned_timestamp
        case "io.debezium.time.ZonedTime":
            return zoned_time
        case "io.debezium.time.Interval":
            return lambda v: TextForm("interval", v)
        case "io.debezium.data.Uuid":
            return UUID
        case "io.debezium.data.Json":
            return Json
        case "io.debezium.data.VariableScaleDecimal":
            return _variable_scale
        case "io.debezium.data.Bits":
            length = int(_parameters(schema).get("length", 0))
            # varbit without a length is sent with length 2^31-1: no padding then.
            return _bits(length if 0 < length < 2**31 - 1 else None)
        case "io.debezium.data.geometry.Point":
            return _point
        case "org.apache.kafka.connect.data.Decimal":
            scale = int(_parameters(schema).get("scale", schema.get("scale", 0)))
            return lambda v: v if isinstance(v, Decimal) else _decimal_from_bytes(v, scale)
        case "org.apache.kafka.connect.data.Timestamp":
            return timestamp_from_millis
    return None


def _by_source_type(kind: Any, source_type: str | None) -> Converter | None:
    """Plain Avro strings and bytes whose meaning only the column's source type gives."""
    if source_type is None:
        return None
    if kind == "string" and source_type in _DECIMAL_TYPES:
        return _decimal_text
    if kind == "bytes" and source_type != "BYTEA":
        # include.unknown.datatypes: a type Debezium has no mapping for (box, tsquery, pg_lsn, a
        # domain inside an array, ...) arrives as the bytes of its text form.
        return _text_of_bytes
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
    return _compile(schema, named={}, source_type=None)


def _element_type(source_type: str | None) -> str | None:
    # PostgreSQL names an array type after its element with a leading underscore (_NUMERIC).
    return source_type[1:] if source_type and source_type.startswith("_") else None


def _compile(schema: Any, named: dict[str, Converter], source_type: str | None) -> Converter:
    if isinstance(schema, str):
        return named.get(schema) or _by_source_type(schema, source_type) or _identity
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) == 1:
            inner = _compile(branches[0], named, source_type)
            return lambda v: None if v is None else inner(v)
        return _identity  # multi-type unions are not produced by Debezium for row columns
    if not isinstance(schema, dict):
        return _identity
    kind = schema.get("type")
    connect_name = schema.get("connect.name")
    own_type = _parameters(schema).get(_SOURCE_TYPE)
    source_type = own_type if isinstance(own_type, str) else source_type
    semantic = _semantic(connect_name, schema) if connect_name else None
    if kind == "record":
        converter = semantic or _record(schema, named)
        if semantic is None and (own_type is not None or str(connect_name).startswith("io.debezium.data.")):
            # A column whose struct no mapping knows (e.g. a PostGIS geometry): kept whole as JSON
            # rather than failing when the row is written.
            record = converter
            converter = lambda v: _struct_as_json(record(v))  # noqa: E731
        _register(schema, named, converter)
        return converter
    if kind == "array":
        item = _compile(schema.get("items"), named, _element_type(source_type))
        return lambda v: [item(x) for x in v]
    if isinstance(kind, dict | list):
        return _compile(kind, named, source_type)
    return semantic or _by_source_type(kind, source_type) or _identity


def _register(schema: dict[str, Any], named: dict[str, Converter], converter: Converter) -> None:
    """Later references to a named type (by short or full name) reuse its converter."""
    name = schema.get("name")
    if not isinstance(name, str):
        return
    named[name] = converter
    namespace = schema.get("namespace")
    if "." not in name and isinstance(namespace, str) and namespace:
        named[f"{namespace}.{name}"] = converter


def _record(schema: dict[str, Any], named: dict[str, Converter]) -> Converter:
    fields = [(f["name"], _field(f["type"], named)) for f in schema.get("fields", [])]

    def convert(value: dict[str, Any]) -> dict[str, Any]:
        try:
            return {name: conv(value.get(name)) for name, conv in fields}
        except DecodeError:
            raise
        except Exception as exc:
            # The slow path, only on failure: find the column so the dead letter names it.
            for name, conv in fields:
                try:
                    conv(value.get(name))
                except Exception as column_exc:
                    raise DecodeError(
                        f"column {name}: cannot convert {value.get(name)!r:.120} "
                        f"({type(column_exc).__name__}: {column_exc})"
                    ) from column_exc
            raise DecodeError(f"cannot convert record: {type(exc).__name__}: {exc}") from exc

    return convert


def _field(field_schema: Any, named: dict[str, Converter]) -> Converter:
    # Column values (record fields) are where Debezium may put the unavailable placeholder.
    return _guard_placeholder(_compile(field_schema, named, None))
