"""The Avro type Debezium gives a PostgreSQL column, under this project's connector settings.

    avro_type_for("numeric(12,2)")   # {'type': 'bytes', 'logicalType': 'decimal', ..., 'connect.name': ...}

Used by `scv schemas check` to predict the schema Debezium will register after a DDL change, so the
registry can be asked *before* the change ships. The mapping follows Debezium's PostgreSQL type table
for decimal.handling.mode=precise and time.precision.mode=adaptive_time_microseconds.
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
}


def avro_type_for(pg_type: str) -> Any:
    """Avro schema (JSON form) of a non-null column value; unknown types map to string (enums etc.)."""
    base = pg_type.strip()
    if base.endswith("[]"):
        return {"type": "array", "items": ["null", _scalar(base[:-2])]}
    return _scalar(base)


def _scalar(pg_type: str) -> Any:
    if pg_type in _SIMPLE:
        return _SIMPLE[pg_type]
    if pg_type.startswith("timestamp") and "with time zone" not in pg_type:
        return {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp", "connect.version": 1}
    if pg_type.startswith("time") and "with time zone" not in pg_type:
        return {"type": "long", "connect.name": "io.debezium.time.MicroTime", "connect.version": 1}
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type.replace(" ", ""))
    if match:
        precision, scale = match.groups()
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": int(precision),
            "scale": int(scale),
            "connect.name": "org.apache.kafka.connect.data.Decimal",
            "connect.parameters": {"scale": scale, "connect.decimal.precision": precision},
        }
    if pg_type == "numeric":
        return {
            "type": "record",
            "name": "VariableScaleDecimal",
            "namespace": "io.debezium.data",
            "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
            "connect.name": "io.debezium.data.VariableScaleDecimal",
        }
    # character varying(n), character(n), enums, citext, inet, ...: strings.
    return "string"


def _strip_null(schema: Any) -> Any:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        return branches[0] if len(branches) == 1 else schema
    return schema


def _signature(schema: Any) -> tuple[Any, ...]:
    """What matters for compatibility: primitive type, logical/connect name, decimal scale, items."""
    schema = _strip_null(schema)
    if isinstance(schema, str):
        return (schema,)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            return _signature(kind)
        items = _signature(schema["items"]) if kind == "array" else ()
        return (kind, schema.get("connect.name"), schema.get("scale"), items)
    return (repr(schema),)


def same_type(contract: Any, predicted: Any) -> bool:
    return _signature(contract) == _signature(predicted)
