"""The peer's CQL tables, derived from a change topic's Avro key and value schemas (pure: no I/O).

    table = peer_table("crm.public.customers", key_schema, value_schema)
    session.execute(table.create_cql("peer_3f2a1c"))
    # CREATE TABLE IF NOT EXISTS "peer_3f2a1c"."crm_customers" ("customer_id" bigint, ...,
    #   PRIMARY KEY (("customer_id")))

Why by hand: kafka-connect-scylladb creates its tables itself (``scylladb.table.manage.enabled``), but
the statement it sends names the compression option the ScyllaDB way (``sstable_compression``), which
Cassandra 5 refuses ("Missing sub-option 'class' for the 'compression' option"), so the benchmark
creates each table the way the connector would have and turns its table management off.

The table is what the connector's ``ScyllaDbSchemaBuilder.create`` makes of a record after Debezium's
``ExtractNewRecordState``: every field of the row (the envelope's ``after``) is a column, every field
of the Debezium key is a *partition* key component (the connector puts all of them in the partition
key, no clustering columns), and each column's CQL type is the one the connector maps the field's
Kafka Connect type to (``ScyllaDbSchemaBuilder.dataType``), the Connect type being what the
Apicurio AvroConverter reads from the Avro schema (``connect.type``, ``connect.name``, logical types).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.peer.exceptions import PeerSchemaError

__all__ = [
    "ROUTE_REGEX",
    "ROUTE_REPLACEMENT",
    "PeerTable",
    "collection_fields",
    "cql_type",
    "peer_table",
    "table_name",
]

# The RegexRouter of the sink: `<source>.<schema>.<table>` -> `<source>_<table>` (the connector then
# names the CQL table after the routed topic). The source name keeps tables of two sources apart.
ROUTE_REGEX = r"([^.]+)\.[^.]+\.([^.]+)"
ROUTE_REPLACEMENT = "$1_$2"

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_KEYWORDS = _PRIMITIVES | {"record", "enum", "array", "map", "fixed"}
# Kafka Connect's own logical types, which the connector maps to CQL's (every other `connect.name`,
# Debezium's among them, is its primitive: io.debezium.time.Date is an int, MicroTimestamp a bigint,
# ZonedTimestamp a text).
_CONNECT_LOGICAL = {
    "org.apache.kafka.connect.data.Timestamp": "timestamp",
    "org.apache.kafka.connect.data.Time": "time",
    "org.apache.kafka.connect.data.Date": "date",
    "org.apache.kafka.connect.data.Decimal": "decimal",
}
_AVRO_LOGICAL = {
    "timestamp-millis": "timestamp",
    "time-millis": "time",
    "date": "date",
    "decimal": "decimal",
}
_CONNECT_INTS = {"int8": "tinyint", "int16": "smallint"}
_SIMPLE = {
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "blob",
    "string": "text",
    "enum": "text",
    "fixed": "blob",
}


def table_name(topic: str) -> str:
    """The CQL table the sink writes ``topic`` to: ROUTE_REGEX applied, then the connector's own
    rule (dots and dashes become underscores, ``ScyllaDbSinkTaskHelper``)."""
    match = re.fullmatch(ROUTE_REGEX, topic)
    routed = f"{match.group(1)}_{match.group(2)}" if match else topic
    return routed.replace(".", "_").replace("-", "_")


def _quote(identifier: str) -> str:
    # Always quoted: a lower-case name means the same quoted or not, and any other name (upper case,
    # a CQL keyword such as `type`) must be quoted to mean the column Debezium named.
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class PeerTable:
    topic: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, CQL type) in the row's field order
    key: tuple[str, ...]  # the Debezium key's fields: the partition key

    def without(self, fields: set[str]) -> PeerTable:
        """The table without the columns of ``fields`` (the sink drops them from every record)."""
        dropped = [k for k in self.key if k in fields]
        if dropped:
            raise PeerSchemaError(f"{self.topic}: cannot leave out key field(s) {dropped}")
        return PeerTable(
            self.topic, self.name, tuple(c for c in self.columns if c[0] not in fields), self.key
        )

    def create_cql(self, keyspace: str) -> str:
        columns = ", ".join(f"{_quote(name)} {kind}" for name, kind in self.columns)
        key = ", ".join(_quote(k) for k in self.key)
        return (
            f"CREATE TABLE IF NOT EXISTS {_quote(keyspace)}.{_quote(self.name)} "
            f"({columns}, PRIMARY KEY (({key})))"
        )


class _Names:
    """Named Avro types seen so far: Debezium's envelope defines the row record in ``before`` and
    refers to it by name in ``after``."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}

    def collect(self, schema: Any, namespace: str = "") -> None:
        if isinstance(schema, list):
            for branch in schema:
                self.collect(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            space = schema.get("namespace", namespace)
            name = str(schema["name"])
            full = name if "." in name else (f"{space}.{name}" if space else name)
            self.types[full] = schema
            self.types.setdefault(name.rsplit(".", 1)[-1], schema)
            namespace = full.rsplit(".", 1)[0] if "." in full else ""
            for field in schema.get("fields", []):
                self.collect(field["type"], namespace)
        elif isinstance(kind, dict | list):
            self.collect(kind, namespace)
        elif kind == "array":
            self.collect(schema["items"], namespace)
        elif kind == "map":
            self.collect(schema["values"], namespace)

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.types:
                raise KeyError(schema)
            return self.types[schema]
        return schema


def _non_null(schema: Any) -> Any:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"a union of {len(branches)} non-null types")
        return branches[0]
    return schema


def cql_type(schema: Any, names: _Names | None = None) -> str:
    """The CQL type the connector gives a field of Avro type ``schema`` (a union with null is the
    type itself: the column is nullable either way). Raises ValueError for what it cannot write."""
    names = names or _Names()
    schema = names.resolve(_non_null(schema))
    if isinstance(schema, str):
        if schema == "null":
            raise ValueError("a field that is always null")
        return _SIMPLE[schema]
    kind = schema.get("type")
    if isinstance(kind, dict | list) or (isinstance(kind, str) and kind not in _KEYWORDS):
        # {"type": {"type": "long", ...}} or {"type": "SomeNamedType"}: the inner schema decides.
        return cql_type(kind, names)
    logical = _CONNECT_LOGICAL.get(str(schema.get("connect.name"))) or _AVRO_LOGICAL.get(
        str(schema.get("logicalType"))
    )
    if logical:
        return logical
    if kind == "int" and schema.get("connect.type") in _CONNECT_INTS:
        return _CONNECT_INTS[str(schema["connect.type"])]
    if kind == "array":
        return f"list<{cql_type(schema['items'], names)}>"
    if kind == "map":
        return f"map<text, {cql_type(schema['values'], names)}>"
    if kind == "record":
        # The connector binds no Connect STRUCT (RecordToBoundStatementConverter.setStructField throws).
        raise ValueError(f"a record ({schema.get('name')}), which the connector cannot write")
    if kind in _SIMPLE:
        return _SIMPLE[str(kind)]
    raise ValueError(f"an Avro type it does not know: {kind!r}")


def _row_record(topic: str, value_schema: Mapping[str, Any], names: _Names) -> Mapping[str, Any]:
    """The row record of a Debezium envelope (the type of ``after``), or the schema itself when it is
    already a row (a topic written without the envelope)."""
    fields = {f["name"]: f for f in value_schema.get("fields", [])}
    if "after" not in fields:
        return value_schema
    try:
        row = names.resolve(_non_null(fields["after"]["type"]))
    except (KeyError, ValueError) as exc:
        raise PeerSchemaError(f"{topic}: the value schema's `after` field has no row record ({exc})") from exc
    if not isinstance(row, Mapping) or row.get("type") != "record":
        raise PeerSchemaError(f"{topic}: the value schema's `after` field is not a record: {row!r}")
    return row


def peer_table(topic: str, key_schema: Mapping[str, Any], value_schema: Mapping[str, Any]) -> PeerTable:
    """The table of ``topic`` from its registered key and value schemas (the `<topic>-key` and
    `<topic>-value` subjects). Raises PeerSchemaError naming the topic and field it cannot map."""
    names = _Names()
    names.collect(dict(value_schema))
    names.collect(dict(key_schema))
    row = _row_record(topic, value_schema, names)
    columns: list[tuple[str, str]] = []
    for field in row.get("fields", []):
        try:
            columns.append((str(field["name"]), cql_type(field["type"], names)))
        except (KeyError, ValueError) as exc:
            raise PeerSchemaError(
                f"{topic}: field {field['name']!r} has {exc}; kafka-connect-scylladb cannot write it "
                "(drop the column from the peer's topics with a ReplaceField SMT, or leave the table out)"
            ) from exc
    key = tuple(str(f["name"]) for f in key_schema.get("fields", []))
    if not key:
        raise PeerSchemaError(f"{topic}: the key schema has no fields; the connector needs a key per row")
    missing = [k for k in key if k not in dict(columns)]
    if missing:
        raise PeerSchemaError(f"{topic}: key field(s) {missing} are not columns of the row")
    return PeerTable(topic, table_name(topic), tuple(columns), key)


def collection_fields(tables: list[PeerTable]) -> dict[str, list[str]]:
    """Fields the connector cannot write, by name, with the tables that have them: lists and maps.

    kafka-connect-scylladb 1.1.7 binds a collection as ``setList(name, value, Object.class)``
    (``RecordToBoundStatementConverter``), for which the driver has no codec: the task dies with
    ``CodecNotFoundException: [TEXT <-> java.lang.Object]`` on the first row holding one (measured on
    crm's ``customers.tags``, a ``text[]``). The sink leaves these fields out of every record (a
    field name is dropped from every topic by ReplaceField, so from every table that has it)."""
    found: dict[str, list[str]] = {}
    for table in tables:
        for name, kind in table.columns:
            if kind.startswith(("list<", "map<", "set<")):
                found.setdefault(name, []).append(table.name)
    return found
