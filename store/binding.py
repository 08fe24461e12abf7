"""Bind values to a prepared statement with one precomputed serializer per column.

    binder = Binder(prepared)
    statement = binder.bind((customer_id, kind, ..., cells, ts))   # a BoundStatement, as prepared.bind

The driver's ``PreparedStatement.bind`` looks up every column's type, builds a column descriptor for
its encryption policy and dispatches ``serialize`` per value, for every row: it was the replicator's
largest single cost while draining a backlog (py-spy: ~14% of the loop, most of it per-value
overhead). The columns the writer binds are text, bigint, int, timestamp and map<text, text>; those
get a direct serializer producing the same bytes (tests/unit/test_binding.py compares them with the
driver's), any other type falls back to the driver's own. No column-encryption policy is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cassandra.marshal import int32_pack, int64_pack
from cassandra.query import BoundStatement, PreparedStatement

__all__ = ["Binder", "serializer_for"]

Serializer = Callable[[Any], bytes]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _timestamp(value: datetime) -> bytes:
    # Milliseconds since the epoch, floored: the driver's bytes for every instant after 1970 (before
    # it, the driver truncates a sub-millisecond part towards zero instead). A naive datetime is UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    milliseconds: int = (value - _EPOCH) // _MILLISECOND
    return bytes(int64_pack(milliseconds))


def _text_map(value: Mapping[str, str]) -> bytes:
    # Protocol v3+: an int32 count, then int32-length-prefixed key and value bytes.
    parts = [int32_pack(len(value))]
    for key, item in value.items():
        key_bytes, item_bytes = key.encode("utf-8"), item.encode("utf-8")
        parts += (int32_pack(len(key_bytes)), key_bytes, int32_pack(len(item_bytes)), item_bytes)
    return b"".join(parts)


_DIRECT: dict[str, Serializer] = {
    "text": _text,
    "bigint": int64_pack,
    "int": int32_pack,
    "timestamp": _timestamp,
    "map<text, text>": _text_map,
}


def serializer_for(cql_type: Any, protocol_version: int) -> Serializer:
    """A direct serializer for the writer's column types; the driver's for any other."""
    # The server describes text columns as varchar (one protocol type id for both): a prepared
    # statement's map<text, text> column arrives as map<varchar, varchar>.
    name = cql_type.cql_parameterized_type().replace("varchar", "text")
    if name in _DIRECT and protocol_version >= 3:
        return _DIRECT[name]

    def by_driver(value: Any) -> bytes:
        return cql_type.serialize(value, protocol_version)  # type: ignore[no-any-return]

    return by_driver


class Binder:
    def __init__(self, prepared: PreparedStatement) -> None:
        self._prepared = prepared
        version = prepared.protocol_version
        self._serializers = [serializer_for(column.type, version) for column in prepared.column_metadata]

    def bind(self, values: Sequence[Any]) -> BoundStatement:
        if len(values) != len(self._serializers):
            raise ValueError(
                f"{len(values)} values for {len(self._serializers)} markers of "
                f"{self._prepared.query_string!r}"
            )
        statement = BoundStatement(self._prepared)
        statement.raw_values = values
        statement.values = [
            None if value is None else serialize(value)
            for serialize, value in zip(self._serializers, values, strict=True)
        ]
        return statement
