"""The Avro type Debezium gives a PostgreSQL column, under this project's connector settings.

    avro_type_for("numeric(12,2)")   # {'type': 'bytes', 'logicalType': 'decimal', ..., 'connect.name': ...}

Used by `scv schemas check` to predict the schema Debezium will register after a DDL change, so the
registry can be asked *before* the change ships. The mapping follows what Debezium 3.5 registers under
this project's connector settings (connectors/render.py): decimal.handling.mode=string,
time.precision.mode=adaptive_time_microseconds, interval.handling.mode=string,
include.unknown.datatypes=true. Schema parameters (the propagated source type) do not matter for
compatibility and are not predicted.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["avro_type_for", "same_type"]

_SIMPLE: dict[str, Any] = {
    "smallint": {"type": "int", "connect.type": "int16"},
    "integer": "int",
    "bigint": "long",
    "real": "float",
    "double precision": "double",
    "boolean": "boolean",
    "text": "string",
    "bytea": "bytes",
    "date": {"type": "int", "connect.name": "io.debezium.time.Date", "connect.version": 1},
    "timestamp with time zone": {
        "type": "string",
        "connect.name": "io.debezium.time.ZonedTimestamp",
        "connect.version": 1,
    },
    "time with time zone": {
        "type": "string",
        "connect.name": "io.debezium.time.ZonedTime",
        "connect.version": 1,
    },
    "uuid": {"type": "string", "connect.name": "io.debezium.data.Uuid", "connect.version": 1},
    "json": {"type": "string", "connect.name": "io.debezium.data.Json", "connect.version": 1},
    "jsonb": {"type": "string", "connect.name": "io.debezium.data.Json", "connect.version": 1},
    "hstore": {"type": "string", "connect.name": "io.debezium.data.Json", "connect.version": 1},
    "xml": {"type": "string", "connect.name": "io.debezium.data.Xml", "connect.version": 1},
    "tsvector": {"type": "string", "connect.name": "io.debezium.data.Tsvector", "connect.version": 1},
    "interval": {"type": "string", "connect.name": "io.debezium.time.Interval", "connect.version": 1},
    # NUMERIC and MONEY travel as text (decimal.handling.mode=string).
    "numeric": "string",
    "money": "string",
    "bit": "boolean",
    "point": {
        "type": "record",
        "name": "Point",
        "namespace": "io.debezium.data.geometry",
        "fields": [
            {"name": "x", "type": "double"},
            {"name": "y", "type": "double"},
            {"name": "wkb", "type": ["null", "bytes"], "default": None},
            {"name": "srid", "type": ["null", "int"], "default": None},
        ],
        "connect.name": "io.debezium.data.geometry.Point",
    },
}
# Types Debezium has no mapping for: the bytes of their text form (include.unknown.datatypes).
_UNKNOWN = frozenset(
    {
        "line", "lseg", "box", "path", "polygon", "circle", "tsquery", "pg_lsn", "txid_snapshot",
        "int4multirange", "int8multirange", "nummultirange", "tsmultirange", "tstzmultirange",
        "datemultirange",
    }
)  # fmt: skip


def avro_type_for(pg_type: str) -> Any:
    """Avro schema (JSON form) of a non-null column value; unknown types map to string (enums etc.)."""
    base = pg_type.strip()
    if base.endswith("[]"):
        return {"type": "array", "items": ["null", _scalar(base[:-2])]}
    return _scalar(base)


def _scalar(pg_type: str) -> Any:
    if pg_type in _SIMPLE:
        return _SIMPLE[pg_type]
    if pg_type in _UNKNOWN:
        return "bytes"
    if pg_type.startswith(("bit(", "bit varying")):
        bits = re.fullmatch(r"bit\((\d+)\)", pg_type)
        if bits and bits.group(1) == "1":
            return "boolean"
        return {"type": "bytes", "connect.name": "io.debezium.data.Bits", "connect.version": 1}
    if pg_type.startswith("timestamp") and "with time zone" not in pg_type:
        # timestamp(0)..timestamp(3) are milliseconds, timestamp(4..6) microseconds (adaptive).
        precision = re.search(r"\((\d)\)", pg_type)
        if precision and int(precision.group(1)) <= 3:
            return {"type": "long", "connect.name": "io.debezium.time.Timestamp", "connect.version": 1}
        return {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp", "connect.version": 1}
    if pg_type.startswith("time") and "with time zone" not in pg_type:
        return {"type": "long", "connect.name": "io.debezium.time.MicroTime", "connect.version": 1}
    if pg_type.startswith("numeric"):
        return "string"
    if pg_type.startswith("interval"):
        return _SIMPLE["interval"]
    # character varying(n), character(n), enums, citext, inet, ranges, ...: strings.
    return "string"


def _strip_null(schema: Any) -> Any:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        return branches[0] if len(branches) == 1 else schema
    return schema


def _signature(schema: Any) -> tuple[Any, ...]:
    """What matters for compatibility: primitive type, logical/connect name, decimal scale, items.

    A plain ``"long"`` and ``{"type": "long", "connect.parameters": {...}}`` (a primitive carrying the
    propagated source type) are the same type."""
    schema = _strip_null(schema)
    if isinstance(schema, str):
        return (schema, None, None, ())
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            return _signature(kind)
        items = _signature(schema["items"]) if kind == "array" else ()
        return (kind, schema.get("connect.name"), schema.get("scale"), items)
    return (repr(schema),)


def same_type(contract: Any, predicted: Any) -> bool:
    return _signature(contract) == _signature(predicted)
