"""The two ceilings the replicator is measured against, over the same backlog:

- ``consume_decode``: a bare confluent-kafka consume loop that decodes every record (wire format +
  fastavro with the writer schema, schema cached per id) and does nothing else;
- ``cql_writes``: a bare CQL write loop of the same rows (one INSERT per change event into a table
  shaped like the view, prepared, ``execute_concurrent``), with no index, no planning, no Kafka.

The replicator cannot beat the lower of the two on one process, so its throughput is quoted as a
ratio of that.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

import fastavro
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.wire import ApicurioContent, AvroDecoder, split_wire_format
from scv.config.settings import Settings
from scv.contracts.cells import encode_value

__all__ = ["CeilingResult", "bare_consume_decode", "bare_cql_writes"]


@dataclass(frozen=True)
class CeilingResult:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Row = tuple[str, str, str, str, str, dict[str, str], int]


def bare_consume_decode(
    settings: Settings, topics: list[str], expected: int, keep_rows: int = 0
) -> tuple[CeilingResult, list[Row]]:
    decoder = AvroDecoder(
        SchemaRegistryClient({"url": settings.registry.url}),
        fallback=ApicurioContent(settings.registry.native_url),
    )
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    rows: list[Row] = []
    seen = 0
    started: float | None = None
    idle_since = time.monotonic()
    try:
        while seen < expected:
            batch = consumer.consume(num_messages=2000, timeout=1.0)
            if not batch:
                if time.monotonic() - idle_since > 30:
                    break
                continue
            idle_since = time.monotonic()
            if started is None:
                started = time.perf_counter()
            for message in batch:
                if message.error():
                    continue
                seen += 1
                value = message.value()
                if value is None:
                    continue
                schema_id, body = split_wire_format(value)
                parsed = decoder.schema(schema_id).parsed  # cached per id after the first record
                record: Any = fastavro.schemaless_reader(io.BytesIO(body), parsed, None)
                if len(rows) < keep_rows and record.get("after"):
                    after = record["after"]
                    first_key = next(iter(after))
                    entity = str(after[first_key])
                    cells = {k: encode_value(_plain(v)) for k, v in after.items()}
                    rows.append(
                        (
                            entity,
                            "bench",
                            "bench",
                            str(message.topic()),
                            entity,
                            cells,
                            int(record["source"]["ts_ms"]) * 1000,
                        )
                    )
    finally:
        consumer.close()
    elapsed = time.perf_counter() - started if started is not None else 0.0
    return CeilingResult("bare consume+decode", seen, elapsed), rows


def _plain(value: Any) -> Any:
    # The ceiling writes what fastavro gives; structs (variable-scale decimals) become their repr.
    if isinstance(value, dict):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def bare_cql_writes(session: Session, keyspace: str, rows: list[Row], concurrency: int = 64) -> CeilingResult:
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {keyspace}.bench_rows (customer_id text, kind text, source text, "
        "table_name text, entity_id text, attributes map<text, text>, source_ts_us bigint, "
        "PRIMARY KEY ((customer_id), kind, source, table_name, entity_id))"
    )
    session.execute(f"TRUNCATE {keyspace}.bench_rows")
    insert = session.prepare(
        f"INSERT INTO {keyspace}.bench_rows (customer_id, kind, source, table_name, entity_id, attributes, "
        "source_ts_us) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    args = [(*row, row[6]) for row in rows]
    started = time.perf_counter()
    for start in range(0, len(args), 20_000):
        execute_concurrent_with_args(
            session, insert, args[start : start + 20_000], concurrency=concurrency, raise_on_first_error=True
        )
    return CeilingResult("bare CQL writes", len(args), time.perf_counter() - started)
