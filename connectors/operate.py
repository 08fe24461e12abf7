"""Day-2 operations on onboarded sources: list, status, pause, resume, resnapshot.

    source_status("crm", settings).slot_lag_bytes   # 0 when caught up
    source_status("crm", settings).holds            # what the replicator holds back, and why
    resnapshot_source("crm", settings, ["public.customers"])

Sources are found through Kafka Connect (their connector, ``SourceNames(name).connector``): its config
says which database, slot, signal table and topics belong to the source, so these commands need only
the name. Database
queries run as the source's CDC user, with the password from the Connect secret file.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from connectors.connect import ConnectClient, ConnectorStatus
from connectors.exceptions import SourceError, SourceNotFound
from connectors.secrets import read_connect_secret
from scv.config.settings import ConnectSettings, Settings
from scv.contracts.naming import SourceNames
from scv.kafka.admin import KafkaAdmin
from store.holds import Hold, HoldStore

__all__ = [
    "OversizedRow",
    "SourceStatus",
    "SourceSummary",
    "captured_tables",
    "list_sources",
    "pause_source",
    "resnapshot_source",
    "restart_source",
    "resume_source",
    "source_status",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SourceSummary:
    name: str
    connector: str
    state: str
    database: str
    tables: tuple[str, ...]
    registered: bool


@dataclass(frozen=True)
class SourceStatus:
    name: str
    connector: ConnectorStatus
    slot_name: str
    slot_active: bool | None
    # pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn): WAL the slot still holds back.
    slot_lag_bytes: int | None
    last_event_at: datetime | None
    last_heartbeat_at: datetime | None
    tables: tuple[str, ...]
    # What the replicator holds back (store/holds.py): a paused source, stopped partitions.
    holds: tuple[Hold, ...] = ()
    # When the task failed on a record over the maximum size: the rows that are (consumer cannot say
    # which change it was; Connect names only its size).
    oversized: tuple[OversizedRow, ...] = ()
    record_too_large: str | None = None


@dataclass(frozen=True)
class OversizedRow:
    table: str
    key: dict[str, str] = field(default_factory=dict)
    bytes: int = 0


def captured_tables(config: dict[str, str]) -> tuple[str, ...]:
    """The spec's tables, from the rendered table.include.list minus the signal table."""
    signal = config.get("signal.data.collection")
    tables = (t.replace("\\", "") for t in config.get("table.include.list", "").split(",") if t)
    return tuple(t for t in tables if t != signal)


def _names(name: str) -> SourceNames:
    try:
        return SourceNames(name)
    except ValueError as exc:
        raise SourceNotFound(f"{exc}; see `scv sources list` for the onboarded sources") from exc


def _config(connect: ConnectClient, name: str) -> dict[str, str]:
    connector = _names(name).connector
    config = connect.get_config(connector)
    if config is None:
        raise SourceNotFound(f"no connector {connector}; see `scv sources list` or onboard it with `add`")
    return config


def connect_as_source(
    config: dict[str, str], connect: ConnectSettings, name: str
) -> psycopg.Connection[TupleRow]:
    """A connection as the source's CDC user, exactly as the connector connects."""
    names = _names(name)
    return psycopg.connect(
        host=config["database.hostname"],
        port=int(config.get("database.port", "5432")),
        dbname=config["database.dbname"],
        user=config["database.user"],
        password=read_connect_secret(connect, names),
        autocommit=True,
        connect_timeout=5,
        application_name=names.application_name,
    )


def list_sources(settings: Settings) -> list[SourceSummary]:
    registered: set[str] = set()
    try:
        from store.registrations import RegistrationStore
        from store.session import open_session

        with open_session(settings.store) as session:
            registered = {r.name for r in RegistrationStore(session, settings.store.keyspace).all()}
    except Exception as exc:  # the list is still useful without the store; say so
        log.warning("sources.registrations_unavailable", error=str(exc))
    out: list[SourceSummary] = []
    with ConnectClient(settings.connect.url) as connect:
        for connector in connect.connectors():
            names = SourceNames.of_connector(connector)
            if names is None:
                continue
            name = names.source
            config = connect.get_config(connector) or {}
            status = connect.status(connector)
            out.append(
                SourceSummary(
                    name=name,
                    connector=connector,
                    state=status.state if status else "UNKNOWN",
                    database=f"{config.get('database.hostname')}:{config.get('database.port')}/"
                    f"{config.get('database.dbname')}",
                    tables=captured_tables(config),
                    registered=name in registered,
                )
            )
    return out


def source_status(name: str, settings: Settings) -> SourceStatus:
    names = _names(name)
    with ConnectClient(settings.connect.url) as connect:
        config = _config(connect, name)
        status = connect.status(names.connector)
    assert status is not None
    slot = config.get("slot.name", names.slot)
    tables = captured_tables(config)
    lag: int | None = None
    active: bool | None = None
    try:
        with connect_as_source(config, settings.connect, name) as conn:
            row = conn.execute(
                "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            if row is not None:
                active, lag = bool(row[0]), int(row[1]) if row[1] is not None else None
    except (psycopg.Error, SourceError) as exc:
        log.warning("sources.status_database_unreachable", source=name, error=str(exc).splitlines()[0])
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        last_event_at = kafka.last_record_time([names.topic(t) for t in tables])
        last_heartbeat_at = kafka.last_record_time([names.heartbeat_topic])
    too_large = _record_too_large(status.failed_trace)
    oversized: tuple[OversizedRow, ...] = ()
    if too_large is not None:
        oversized = tuple(_oversized_rows(config, settings, name, tables, too_large[1]))
    return SourceStatus(
        name=name,
        connector=status,
        slot_name=slot,
        slot_active=active,
        slot_lag_bytes=lag,
        last_event_at=last_event_at,
        last_heartbeat_at=last_heartbeat_at,
        tables=tables,
        holds=tuple(_holds_of(name, settings)),
        oversized=oversized,
        record_too_large=too_large[0] if too_large else None,
    )


def _holds_of(name: str, settings: Settings) -> list[Hold]:
    from store.session import open_session

    try:
        with open_session(settings.store) as session:
            return HoldStore(session, settings.store.keyspace).of_sources([name])
    except Exception as exc:  # status stays useful without the store; it says so
        log.warning("sources.holds_unavailable", source=name, error=str(exc).splitlines()[0])
        return []


# Kafka's words when Connect's producer refuses a record over producer.max.request.size.
_TOO_LARGE = re.compile(r"RecordTooLargeException: The message is (\d+) bytes .* larger than (\d+)")


def _record_too_large(trace: str | None) -> tuple[str, int] | None:
    """(Kafka's sentence, the limit in bytes) when a task failed on a record over the maximum."""
    match = _TOO_LARGE.search(trace or "")
    if match is None:
        return None
    return match.group(0).split(": ", 1)[1], int(match.group(2))


def _oversized_rows(
    config: dict[str, str], settings: Settings, name: str, tables: tuple[str, ...], limit: int
) -> list[OversizedRow]:
    """Rows of the captured tables whose text form is near or over the record limit, biggest first.

    Connect names the record's size, not its row; the row is still in the table unless it changed
    since, so this scans the captured tables (the source is stopped anyway)."""
    found: list[OversizedRow] = []
    try:
        with connect_as_source(config, settings.connect, name) as conn:
            for table in tables:
                schema, relation = table.split(".", 1)
                keys = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                        (f'"{schema}"."{relation}"',),
                    ).fetchall()
                ]
                columns = sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(k)) for k in keys)
                query = sql.SQL(
                    "SELECT octet_length(t::text) AS size{sep}{columns} FROM {table} AS t "
                    "WHERE octet_length(t::text) > %s ORDER BY 1 DESC LIMIT 5"
                ).format(
                    sep=sql.SQL(", ") if keys else sql.SQL(""),
                    columns=columns,
                    table=sql.Identifier(schema, relation),
                )
                for row in conn.execute(query, (int(limit * 0.9),)).fetchall():
                    found.append(
                        OversizedRow(table, dict(zip(keys, map(str, row[1:]), strict=True)), int(row[0]))
                    )
    except (psycopg.Error, SourceError) as exc:
        log.warning("sources.oversized_scan_failed", source=name, error=str(exc).splitlines()[0])
    return found


def pause_source(name: str, settings: Settings) -> None:
    """Pause the connector. The slot keeps every change, so nothing is lost; WAL accumulates meanwhile."""
    with ConnectClient(settings.connect.url) as connect:
        _config(connect, name)
        connect.pause(_names(name).connector)
    log.info("sources.paused", source=name)


def resume_source(name: str, settings: Settings) -> list[Hold]:
    """Resume the connector, and the replicator's consumption if a poison storm paused it (returns
    the holds lifted; replicators resume within a registrations poll)."""
    with ConnectClient(settings.connect.url) as connect:
        _config(connect, name)
        connect.resume(_names(name).connector)
    lifted = _lift_holds(name, settings, "poison_storm")
    log.info("sources.resumed", source=name, holds_lifted=len(lifted))
    return lifted


def _lift_holds(name: str, settings: Settings, reason: str, topics: set[str] | None = None) -> list[Hold]:
    """Delete the source's holds for ``reason`` (of ``topics`` only, when given); an offset gap is
    lifted as ``offset_gap_recovered``, which restarts its partition from the earliest record."""
    from store.session import open_session

    with open_session(settings.store) as session:
        store = HoldStore(session, settings.store.keyspace)
        lifted = [
            h
            for h in store.of_sources([name])
            if h.reason == reason and (topics is None or h.topic in topics)
        ]
        for hold in lifted:
            if reason == "offset_gap":
                store.put(
                    Hold(
                        hold.source,
                        "offset_gap_recovered",
                        hold.topic,
                        hold.partition,
                        detail=f"recovered by resnapshot: {hold.detail}",
                    )
                )
            store.delete(hold.source, hold.reason, hold.topic, hold.partition)
    return lifted


def restart_source(name: str, settings: Settings) -> None:
    """Restart the connector's FAILED parts (connector and tasks): Kafka Connect never does by itself."""
    with ConnectClient(settings.connect.url) as connect:
        _config(connect, name)
        connect.restart(_names(name).connector)
    log.info("sources.restarted", source=name)


def resnapshot_source(name: str, settings: Settings, tables: list[str] | None = None) -> str:
    """Insert an ``execute-snapshot`` signal (incremental) for ``tables`` (default: all); returns its id.

    Debezium re-reads the tables in chunks while streaming goes on; the re-emitted rows are op=r with
    source.snapshot=incremental, which the replicator applies like any read.
    """
    with ConnectClient(settings.connect.url) as connect:
        config = _config(connect, name)
    captured = captured_tables(config)
    chosen = tables or list(captured)
    unknown = sorted(set(chosen) - set(captured))
    if unknown:
        raise SourceError(
            f"{', '.join(unknown)} not captured by source {name} (tables: {', '.join(captured)}); "
            f"add them to the spec and re-run `scv sources add` first"
        )
    signal_table = config.get("signal.data.collection")
    if not signal_table:
        raise SourceError(
            f"connector {_names(name).connector} has no signal.data.collection; re-run `scv sources add`"
        )
    signal_id = f"scv-{uuid.uuid4()}"
    data = json.dumps({"data-collections": chosen, "type": "incremental"})
    schema, table = signal_table.split(".", 1)
    with connect_as_source(config, settings.connect, name) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                sql.Identifier(schema, table)
            ),
            (signal_id, data),
        )
    # The re-read covers what an offset gap lost: its stopped partitions restart from the earliest record.
    names = _names(name)
    lifted = _lift_holds(name, settings, "offset_gap", {names.topic(t) for t in chosen})
    log.info(
        "sources.resnapshot_signalled",
        source=name,
        tables=chosen,
        signal_id=signal_id,
        gaps_recovered=len(lifted),
    )
    return signal_id
