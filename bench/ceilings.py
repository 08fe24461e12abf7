"""The two ceilings the replicator is measured against, over the same backlog:

- ``consume_decode``: a bare confluent-kafka consume loop that decodes every record (wire format +
  fastavro with the writer schema, schema cached per id) and does nothing else;
- ``cql_writes``: a bare CQL write loop of the same rows (one INSERT per change event into a table
  shaped like the view, prepared, ``execute_concurrent``), with no index, no planning, no Kafka;
- ``cql_writes_per_core``: the same loop in one process per core, each writing its share of the rows
  at the same time: what the store takes on this host when the client is not one interpreter.

The replicator cannot beat the lower of the first two on one process, nor the per-core CQL ceiling
with one process per core: its throughput is quoted as a ratio of those (a ratio above 1 means the
ceiling was measured too low, not that it was beaten).
"""

from __future__ import annotations

import io
import multiprocessing
import time
import uuid
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import fastavro
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.wire import ApicurioContent, AvroDecoder, split_wire_format
from scv.config.settings import Settings, StoreSettings
from scv.contracts.cells import encode_value
from store.session import connect

__all__ = ["CeilingResult", "bare_consume_decode", "bare_cql_writes", "bare_cql_writes_per_core"]


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
    settings: Settings, topics: list[str], expected: int, keep_rows: int = 0, group: str | None = None
) -> tuple[CeilingResult, list[Row]]:
    decoder = AvroDecoder(
        SchemaRegistryClient({"url": settings.registry.url}),
        fallback=ApicurioContent(settings.registry.native_url),
    )
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group or f"bench-ceiling-{uuid.uuid4().hex[:8]}",
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


_INSERT = (
    "INSERT INTO {keyspace}.bench_rows (customer_id, kind, source, table_name, entity_id, attributes, "
    "source_ts_us) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
)


def _bench_table(session: Session, keyspace: str) -> None:
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {keyspace}.bench_rows (customer_id text, kind text, source text, "
        "table_name text, entity_id text, attributes map<text, text>, source_ts_us bigint, "
        "PRIMARY KEY ((customer_id), kind, source, table_name, entity_id))"
    )
    session.execute(f"TRUNCATE {keyspace}.bench_rows")


def _write(session: Session, keyspace: str, rows: list[Row], concurrency: int) -> None:
    insert = session.prepare(_INSERT.format(keyspace=keyspace))
    args = [(*row, row[6]) for row in rows]
    for start in range(0, len(args), 20_000):
        execute_concurrent_with_args(
            session, insert, args[start : start + 20_000], concurrency=concurrency, raise_on_first_error=True
        )


def bare_cql_writes(session: Session, keyspace: str, rows: list[Row], concurrency: int = 64) -> CeilingResult:
    _bench_table(session, keyspace)
    session.prepare(_INSERT.format(keyspace=keyspace))
    started = time.perf_counter()
    _write(session, keyspace, rows, concurrency)
    return CeilingResult("bare CQL writes, 1 process", len(rows), time.perf_counter() - started)


def _cql_worker(
    store: StoreSettings, keyspace: str, rows: list[Row], concurrency: int, barrier: Barrier, out: Queue[Any]
) -> None:
    cluster, session = connect(store)
    try:
        session.prepare(_INSERT.format(keyspace=keyspace))
        barrier.wait(120)  # every process connected and prepared: the clock starts for all at once
        started = time.monotonic()
        _write(session, keyspace, rows, concurrency)
        out.put((started, time.monotonic()))
    except BaseException as exc:
        out.put(exc)
        raise
    finally:
        cluster.shutdown()


def bare_cql_writes_per_core(
    session: Session, store: StoreSettings, rows: list[Row], processes: int, concurrency: int = 64
) -> CeilingResult:
    """The CQL loop in ``processes`` processes at once, each with its own share of ``rows`` (by
    customer, so no two write one partition); the rate is every row over first start -> last end."""
    _bench_table(session, store.keyspace)
    shares: list[list[Row]] = [[] for _ in range(processes)]
    for row in rows:
        shares[hash(row[0]) % processes].append(row)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    out: Queue[Any] = context.Queue()
    workers = [
        context.Process(
            target=_cql_worker,
            args=(store, store.keyspace, share, concurrency, barrier, out),
            name=f"bench-cql-{i}",
        )
        for i, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    spans = [out.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join(60)
    failures = [span for span in spans if isinstance(span, BaseException)]
    if failures:
        raise RuntimeError(f"a CQL ceiling process failed: {failures[0]!r}")
    seconds = max(end for _start, end in spans) - min(start for start, _end in spans)
    return CeilingResult(f"bare CQL writes, {processes} processes", len(rows), seconds)
