"""The infrastructure path end to end, with nothing of the service's own code in between:

PostgreSQL row -> Debezium (pgoutput, filtered publication) -> Apicurio Avro converter writing the
Confluent wire format -> Kafka -> confluent-kafka consumer -> schema fetched by id from the registry's
Confluent-compatible API -> fastavro decode. Plus a CQL round trip and `scv stack status --json`.
"""

from __future__ import annotations

import io
import json
import secrets
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import httpx
import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from psycopg import sql

from scv.config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
AVRO_CONVERTER = "io.apicurio.registry.utils.converter.AvroConverter"


def _wait_until(what: str, condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def avro_converter_config(prefix: str, registry_native_url: str) -> dict[str, str]:
    """The converter settings that make Apicurio write what a Confluent deserializer reads:
    magic byte 0 + 4-byte schema id, where the id is the registry's contentId, which is also the id
    its ccompat API (/apis/ccompat/v7/schemas/ids/{id}) serves."""
    return {
        f"{prefix}.converter": AVRO_CONVERTER,
        f"{prefix}.converter.apicurio.registry.url": registry_native_url,
        f"{prefix}.converter.apicurio.registry.auto-register": "true",
        f"{prefix}.converter.apicurio.registry.find-latest": "true",
        # as-confluent selects the 4-byte id handler; use-id picks which id goes in those bytes;
        # headers.enabled=false puts the id in the payload instead of Kafka headers.
        f"{prefix}.converter.apicurio.registry.as-confluent": "true",
        f"{prefix}.converter.apicurio.registry.use-id": "contentId",
        f"{prefix}.converter.apicurio.registry.headers.enabled": "false",
    }


@dataclass(frozen=True)
class CdcSource:
    dbname: str
    role: str
    slot: str
    publication: str
    topic_prefix: str
    connector: str
    secret_file: Path

    @property
    def topic(self) -> str:
        return f"{self.topic_prefix}.public.accounts"


@pytest.fixture
def cdc_source(stack: Settings) -> Iterator[CdcSource]:
    run = uuid.uuid4().hex[:8]
    src = CdcSource(
        dbname=f"infra_{run}",
        role=f"infra_cdc_{run}",
        slot=f"infra_{run}",
        publication=f"infra_{run}",
        topic_prefix=f"infra{run}",
        connector=f"infra-{run}",
        # Connect's secrets folder: the only one its file config provider may read (allowed.paths).
        secret_file=stack.connect.secret_file(f"infra-{run}.properties"),
    )
    password = secrets.token_urlsafe(16)
    admin_dsn = stack.postgres.dsn()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(src.dbname)))
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                sql.Identifier(src.role), sql.Literal(password)
            )
        )
    with psycopg.connect(stack.postgres.dsn(src.dbname), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.accounts (id uuid PRIMARY KEY, balance numeric(12,2) NOT NULL,"
            " opened_at timestamptz NOT NULL, name text)"
        )
        conn.execute(sql.SQL("GRANT SELECT ON public.accounts TO {}").format(sql.Identifier(src.role)))
        # Created by the superuser and filtered to one table: the CDC role needs no ownership.
        conn.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE public.accounts").format(sql.Identifier(src.publication))
        )
    src.secret_file.parent.mkdir(parents=True, exist_ok=True)
    src.secret_file.write_text(f"password={password}\n")
    src.secret_file.chmod(0o600)
    try:
        yield src
    finally:
        httpx.delete(f"{stack.connect.url}/connectors/{src.connector}", timeout=30)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:

            def slot_released() -> bool:
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [src.slot]
                ).fetchone()
                return row is None or not row[0]

            _wait_until(f"slot {src.slot} to be released", slot_released)
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                [src.slot],
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(src.dbname))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(src.role)))
        src.secret_file.unlink(missing_ok=True)
        topics = [src.topic, src.topic_prefix]
        AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers}).delete_topics(topics)


def _register_connector(stack: Settings, src: CdcSource) -> None:
    config = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "database.hostname": stack.postgres.host,
        "database.port": str(stack.postgres.port),
        "database.user": src.role,
        # Resolved by the worker's FileConfigProvider: the password never enters Connect's config topic.
        "database.password": f"${{file:{src.secret_file}:password}}",
        "database.dbname": src.dbname,
        "topic.prefix": src.topic_prefix,
        "slot.name": src.slot,
        "publication.name": src.publication,
        "publication.autocreate.mode": "disabled",
        "table.include.list": "public.accounts",
        "snapshot.mode": "initial",
        "tombstones.on.delete": "false",
        **avro_converter_config("key", stack.registry.native_url),
        **avro_converter_config("value", stack.registry.native_url),
    }
    resp = httpx.put(f"{stack.connect.url}/connectors/{src.connector}/config", json=config, timeout=30)
    assert resp.status_code in (200, 201), resp.text

    def running() -> bool:
        status = httpx.get(f"{stack.connect.url}/connectors/{src.connector}/status", timeout=10)
        if status.status_code != 200:
            return False
        body = status.json()
        failed = [t for t in body.get("tasks", []) if t.get("state") == "FAILED"]
        if failed:
            pytest.fail(f"connector task failed: {failed[0].get('trace', '')[:2000]}")
        return body["connector"]["state"] == "RUNNING" and any(t["state"] == "RUNNING" for t in body["tasks"])

    _wait_until(f"connector {src.connector} to run", running, timeout_s=90)


def _consume(stack: Settings, topic: str, count: int, timeout_s: float = 90.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka.bootstrap_servers,
            "group.id": f"infra-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    messages: list[Any] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    assert len(messages) == count, f"got {len(messages)} of {count} records on {topic} in {timeout_s:.0f}s"
    return messages


def _decode(registry: SchemaRegistryClient, payload: bytes) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Confluent wire format: magic byte 0, big-endian 4-byte schema id, Avro binary body."""
    assert payload[0] == 0, f"magic byte is {payload[0]}, expected 0 (Confluent wire format)"
    (schema_id,) = struct.unpack(">I", payload[1:5])
    schema_str = registry.get_schema(schema_id).schema_str
    assert schema_str is not None, f"registry has no schema for id {schema_id}"
    schema = json.loads(schema_str)
    record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), fastavro.parse_schema(schema))
    assert isinstance(record, dict)
    return schema_id, schema, record


def _numeric(value: Any, field_schema: dict[str, Any]) -> Decimal:
    # fastavro returns Decimal when the schema carries logicalType decimal; raw bytes otherwise.
    if isinstance(value, Decimal):
        return value
    scale = int(field_schema.get("scale", field_schema.get("connect.parameters", {}).get("scale", 0)))
    return Decimal(int.from_bytes(value, "big", signed=True)).scaleb(-scale)


def test_debezium_avro_record_decodes_with_the_registry_schema(
    stack: Settings, cdc_source: CdcSource
) -> None:
    snapshot_id, streamed_id = uuid.uuid4(), uuid.uuid4()
    opened = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)
    dsn = stack.postgres.dsn(cdc_source.dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.accounts VALUES (%s, %s, %s, %s)",
            [snapshot_id, Decimal("1234.56"), opened, "snap"],
        )
    _register_connector(stack, cdc_source)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.accounts VALUES (%s, %s, %s, %s)",
            [streamed_id, Decimal("-0.05"), opened, "stream"],
        )

    messages = _consume(stack, cdc_source.topic, count=2)
    registry = SchemaRegistryClient({"url": stack.registry.url})
    rows = {}
    for msg in messages:
        _, _, key = _decode(registry, msg.key())
        _, value_schema, envelope = _decode(registry, msg.value())
        after = envelope["after"]
        assert key["id"] == after["id"]
        rows[after["name"]] = (envelope["op"], after, value_schema)

    op, after, value_schema = rows["snap"]
    assert op == "r"  # read by the initial snapshot
    assert uuid.UUID(after["id"]) == snapshot_id
    # The row record is defined inline at its first use ("before"); "after" refers to it by name.
    before = next(f for f in value_schema["fields"] if f["name"] == "before")["type"]
    row_record = next(t for t in before if isinstance(t, dict))
    balance_schema = next(f for f in row_record["fields"] if f["name"] == "balance")["type"]
    assert _numeric(after["balance"], balance_schema) == Decimal("1234.56")
    # Debezium's ZonedTimestamp: an ISO-8601 string in UTC, microseconds kept.
    assert datetime.fromisoformat(after["opened_at"].replace("Z", "+00:00")) == opened

    op, after, _ = rows["stream"]
    assert op == "c"  # streamed from the WAL through the slot
    assert uuid.UUID(after["id"]) == streamed_id
    assert _numeric(after["balance"], balance_schema) == Decimal("-0.05")


def test_cql_store_round_trips_a_row(stack: Settings) -> None:
    from cassandra.cluster import Cluster

    keyspace = f"infra_{uuid.uuid4().hex[:8]}"
    cluster = Cluster(stack.store.contact_points, port=stack.store.port)
    try:
        session = cluster.connect()
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{stack.store.local_dc}': 1}}"
        )
        session.execute(f"CREATE TABLE {keyspace}.kv (k uuid PRIMARY KEY, v decimal, t timestamp)")
        key, when = uuid.uuid4(), datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        session.execute(
            f"INSERT INTO {keyspace}.kv (k, v, t) VALUES (%s, %s, %s)", (key, Decimal("9.99"), when)
        )
        row = session.execute(f"SELECT v, t FROM {keyspace}.kv WHERE k = %s", (key,)).one()
        assert row.v == Decimal("9.99")
        assert row.t.replace(tzinfo=UTC) == when
        session.execute(f"DROP KEYSPACE {keyspace}")
    finally:
        cluster.shutdown()


def test_stack_status_json_reports_every_service_healthy(stack: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from scv.cli import main; main()", "stack", "status", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = json.loads(proc.stdout)
    assert {s["name"] for s in statuses} == {
        "postgres",
        "kafka",
        "connect",
        "registry",
        "cassandra",
        "prometheus",
        "exporter",
    }
    for s in statuses:
        assert set(s) >= {"name", "healthy", "endpoint", "pid"}
        assert s["healthy"], s
