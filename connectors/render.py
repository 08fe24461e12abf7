"""Render the Debezium PostgreSQL connector configuration of a source spec (pure: no I/O).

    config = render_connector_config(spec, settings.kafka, settings.connect)
    connect.put_config(spec.names.connector, config)

The rendered config never holds the CDC password: ``database.password`` is a reference that Kafka
Connect's FileConfigProvider resolves inside the worker (``${file:<path>:password}``), so the REST
API, the worker's config topic and every log show the reference only. Addresses and paths in it are
the *worker's* view (``ConnectSettings.worker_*``): the worker may run in another container or host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from psycopg import sql

from connectors.spec import SourceSpec, TableSpec
from scv.config.settings import ConnectSettings, KafkaSettings

__all__ = [
    "CONNECTOR_CLASS",
    "CONVERTER_CLASS",
    "MASK_CHARS",
    "LiveChoices",
    "converter_config",
    "heartbeat_query",
    "password_reference",
    "render_connector_config",
]

CONNECTOR_CLASS: Final = "io.debezium.connector.postgresql.PostgresConnector"
CONVERTER_CLASS: Final = "io.apicurio.registry.utils.converter.AvroConverter"
# How long the converter keeps asking the registry for a schema it has not cached (a new column, a
# restarted task) before the task fails: 120 x 1 s, enough for a registry restart.
REGISTRY_RETRIES: Final = 120
REGISTRY_BACKOFF_MS: Final = 1000
# `column.mask.with.N.chars` replaces a string value by N asterisks; the length carries no information
# about the original value.
MASK_CHARS: Final = 8


@dataclass(frozen=True)
class LiveChoices:
    """What validation decided from the live database (connectors/validate.py), so rendering stays pure.

    ``publication_mode``: the spec's publication_autocreate with `auto` resolved.
    ``heartbeat_action``: False when the heartbeat table is missing: heartbeats are still emitted (the
    snapshot-done signal and the status page rely on them) but do not write WAL; validate says so.
    """

    publication_mode: Literal["disabled", "filtered"] = "disabled"
    heartbeat_action: bool = True


def converter_config(registry_url: str, role: str) -> dict[str, str]:
    """The Apicurio AvroConverter properties for ``role`` ("key" or "value").

    ``registry_url``: the registry's native API as the worker reaches it. The one place the converter
    is configured. Records must carry the Confluent wire format (magic
    byte 0 + 4-byte schema id) with ids the ccompat API resolves (``GET /schemas/ids/<id>``), because
    the replicator decodes with confluent-kafka's client through that API:
    - ``headers.enabled=false``: the id travels in the payload, not in Kafka headers;
    - ``as-confluent=true`` + ``use-id=contentId``: a 4-byte content id, which is what Apicurio's
      ccompat API serves as the schema id;
    - ``auto-register``/``find-latest``: Debezium's schemas are registered on first use, under the
      TopicIdStrategy subjects ``<topic>-key`` / ``<topic>-value``.
    - ``fault-tolerant-refresh`` + retries: a registry outage must not fail the connector. The
      converter re-checks each cached schema every ``check-period-ms`` (30 s); without this, the first
      re-check during an outage throws, Connect does not retry converter errors that are not
      RetriableException, and every task goes FAILED for good: changes stop until someone restarts
      them (tests/faults, the registry case). With it, a cached schema is kept when its re-check
      fails, and a schema not cached yet (a new column, a restarted task) is asked for again for
      ``REGISTRY_RETRIES`` x ``REGISTRY_BACKOFF_MS`` before the task fails.
    The settings mirror tests/integration/test_stack_infra.py, which proves them on the real stack.
    """
    prefix = f"{role}.converter"
    return {
        prefix: CONVERTER_CLASS,
        f"{prefix}.apicurio.registry.url": registry_url,
        f"{prefix}.apicurio.registry.auto-register": "true",
        f"{prefix}.apicurio.registry.find-latest": "true",
        f"{prefix}.apicurio.registry.headers.enabled": "false",
        f"{prefix}.apicurio.registry.as-confluent": "true",
        f"{prefix}.apicurio.registry.use-id": "contentId",
        f"{prefix}.apicurio.registry.fault-tolerant-refresh": "true",
        f"{prefix}.apicurio.registry.retry-count": str(REGISTRY_RETRIES),
        f"{prefix}.apicurio.registry.retry-backoff-ms": str(REGISTRY_BACKOFF_MS),
    }


def password_reference(secret_file: Path) -> str:
    """What ``database.password`` holds: a FileConfigProvider reference, never the value."""
    return f"${{file:{secret_file}:password}}"


def heartbeat_query(spec: SourceSpec) -> str:
    # An UPSERT of one row per source: it writes WAL in the source database on every heartbeat, so the
    # slot's confirmed LSN follows the server's even when the captured tables are idle (otherwise
    # the slot pins WAL written by other databases of the same cluster until the disk fills).
    # Quoted by psycopg, as grant-sql quotes the table it creates (connectors/grants.py).
    schema, table = spec.heartbeat_table.split(".", 1)
    query = sql.SQL(
        "INSERT INTO {table} (source, beat_at) VALUES ({name}, now()) "
        "ON CONFLICT (source) DO UPDATE SET beat_at = EXCLUDED.beat_at"
    ).format(table=sql.Identifier(schema, table), name=sql.Literal(spec.name))
    return query.as_string(None)


def _column_regex(table: str, column: str) -> str:
    # Debezium matches `schema.table.column` against each entry as a whole-string Java regex.
    return re.escape(f"{table}.{column}")


def _all_columns_but(table: str, excluded: list[str]) -> str:
    base = re.escape(f"{table}.")
    if not excluded:
        return f"{base}.+"
    # Negative lookahead (Java regex): every column of the table except the excluded ones.
    alternatives = "|".join(re.escape(c) for c in excluded)
    return f"{base}(?!(?:{alternatives})$).+"


def _column_lists(spec: SourceSpec) -> dict[str, str]:
    """``column.include.list`` or ``column.exclude.list``.

    Debezium refuses both lists in one connector, so as soon as one table names include_columns every
    table is expressed as an include list (others as "all columns except their excludes") and the
    signal table keeps all its columns, without which incremental snapshots would stop.
    """
    tables = spec.tables
    if any(t.include_columns is not None for t in tables.values()):
        entries: list[str] = []
        for name, table in tables.items():
            if table.include_columns is not None:
                entries.extend(_column_regex(name, c) for c in _with_keys(table, table.include_columns))
            else:
                entries.append(_all_columns_but(name, table.exclude_columns))
        entries.append(_all_columns_but(spec.signal_table, []))
        return {"column.include.list": ",".join(entries)}
    excluded = [_column_regex(name, c) for name, t in tables.items() for c in t.exclude_columns]
    return {"column.exclude.list": ",".join(excluded)} if excluded else {}


def _with_keys(table: TableSpec, columns: list[str]) -> list[str]:
    # The customer key (or via column), the entity id columns, lookup keys and the merge column must
    # reach the replicator whatever the DBA listed: without them a row cannot be placed or found.
    needed = [table.key_column, *(table.entity_id or []), *table.keys, *filter(None, [table.merge_into])]
    return [*columns, *(c for c in needed if c not in columns)]


def _masking(spec: SourceSpec) -> dict[str, str]:
    hashed = [_column_regex(n, c) for n, t in spec.tables.items() for c in t.hash_columns]
    masked = [_column_regex(n, c) for n, t in spec.tables.items() for c in t.mask_columns]
    out: dict[str, str] = {}
    if hashed:
        out[f"column.mask.hash.SHA-256.with.salt.{spec.hash_salt}"] = ",".join(hashed)
    if masked:
        out[f"column.mask.with.{MASK_CHARS}.chars"] = ",".join(masked)
    return out


def render_connector_config(
    spec: SourceSpec,
    kafka: KafkaSettings,
    connect: ConnectSettings,
    *,
    choices: LiveChoices | None = None,
    password_ref: str | None = None,
) -> dict[str, str]:
    """The full connector config (every value a string, as Kafka Connect stores it).

    Without ``choices`` the spec's own publication mode is used (`auto` renders `disabled`, the
    least-privilege reading) with the heartbeat action query. ``password_ref`` is what
    ``database.password`` holds: a config provider reference resolved by the worker (default: the
    FileConfigProvider reference to the source's file in the worker's secrets folder; on Kubernetes,
    connectors/kubernetes.py passes a Secret reference).
    """
    if choices is None:
        mode = spec.publication_autocreate
        choices = LiveChoices(publication_mode="filtered" if mode == "filtered" else "disabled")
    db = spec.database
    names = spec.names
    partitions = spec.topic_partitions or kafka.topic_partitions
    config: dict[str, str] = {
        "name": names.connector,
        "connector.class": CONNECTOR_CLASS,
        # One task: a PostgreSQL slot is consumed by exactly one connection.
        "tasks.max": "1",
        "database.hostname": db.host,
        "database.port": str(db.port),
        "database.dbname": db.dbname,
        "database.user": db.user,
        "database.password": password_ref
        or password_reference(connect.worker_secret_file(names.secret_file)),
        "topic.prefix": names.topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": names.slot,
        "publication.name": names.publication,
        "publication.autocreate.mode": choices.publication_mode,
        "table.include.list": ",".join(re.escape(t) for t in [*spec.tables, spec.signal_table]),
        "signal.enabled.channels": "source",
        "signal.data.collection": spec.signal_table,
        "snapshot.mode": spec.snapshot_mode,
        "heartbeat.interval.ms": str(spec.heartbeat_interval_ms),
        # Debezium waits poll.interval.ms (default 500) whenever its queue is empty; at moderate
        # change rates that wait dominates freshness (the p99 < 1 s objective), so keep it short.
        "poll.interval.ms": "50",
        # NOT more requests in flight, although Connect's one-in-flight producer is what a slow
        # produce round trip holds back: with 5 in flight (idempotent), the first records of a table,
        # sent while Connect creates its topic, made the producer resend from sequence 0 and retry
        # OUT_OF_ORDER_SEQUENCE_NUMBER forever (delivery.timeout is unbounded in Connect): the
        # connector stalled silently during the benchmark's snapshot. The producer's linger and
        # maximum request size are the worker's (compose/native/configs.py), so connectors need no
        # client overrides and the worker allows none.
        # Every legal value of a source type must reach the view (consumer/logical.py decodes exactly
        # these encodings; README "Value forms"; read from Debezium 3.5 records on the local stack):
        # - NUMERIC and MONEY as text: `precise` turns NaN and ±Infinity into NULL (a NUMERIC[] holding
        #   one becomes NULL whole) and carries MONEY through a double (92233720368547758.07 arrived
        #   as ...760.00); the text keeps every digit and the special values;
        "decimal.handling.mode": "string",
        # - microsecond times, and ISO 8601 intervals: the default (`numeric`) approximates months
        #   as 30.4375 days, `string` keeps P1Y2M3DT4H5M6.789S exactly;
        "time.precision.mode": "adaptive_time_microseconds",
        "interval.handling.mode": "string",
        # - types Debezium has no mapping for (box, line, lseg, path, polygon, circle, multiranges,
        #   tsquery, pg_lsn, txid_snapshot, arrays of domains) are otherwise dropped from the record
        #   silently, and `name` columns streamed as NULL: with this they arrive as their text;
        "include.unknown.datatypes": "true",
        # - the column's source type in the schema, so the replicator can tell NUMERIC text from
        #   text and an unknown type's bytes from bytea;
        "datatype.propagate.source.type": ".+",
        # - hstore as a JSON object, bytea as bytes (the defaults, stated because decoding relies on them).
        "hstore.handling.mode": "json",
        "binary.handling.mode": "bytes",
        # Truncates must flow: the replicator clears the table's entities on `t`.
        "skipped.operations": "none",
        # Tombstones after deletes keep the topics usable by compacting consumers downstream.
        "tombstones.on.delete": "true",
        # Avro names must be valid whatever the table/column names are.
        "schema.name.adjustment.mode": "avro",
        "slot.drop.on.stop": "false",
        "topic.creation.default.partitions": str(partitions),
        "topic.creation.default.replication.factor": str(kafka.replication_factor),
        # Time-retained, NOT compacted: Debezium's truncate event has no key, and a compacted topic
        # rejects keyless records — the broker error kills the connector task on the first TRUNCATE.
        # A view is rebuilt from scratch with `scv sources resnapshot`, not by replaying the topics.
        "topic.creation.default.cleanup.policy": "delete",
        "topic.creation.default.retention.ms": str(7 * 24 * 3600 * 1000),
    }
    if choices.heartbeat_action:
        config["heartbeat.action.query"] = heartbeat_query(spec)
    config.update(_column_lists(spec))
    config.update(_masking(spec))
    config.update(converter_config(connect.worker_registry_url, "key"))
    config.update(converter_config(connect.worker_registry_url, "value"))
    return config
