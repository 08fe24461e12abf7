"""Day-2 operations on onboarded sources: list, status, pause, resume, resnapshot.

    source_status("crm", settings).slot_lag_bytes   # 0 when caught up
    resnapshot_source("crm", settings, ["public.customers"])

Sources are found through Kafka Connect (connector ``scv-<name>``): its config says which database,
slot, signal table and topics belong to the source, so these commands need only the name. Database
queries run as the source's CDC user, with the password from the Connect secret file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from connectors.connect import ConnectClient, ConnectorStatus
from connectors.exceptions import SourceError, SourceNotFound
from connectors.secrets import secret_path
from connectors.topics import heartbeat_topic, last_record_time
from scv.settings import Settings

__all__ = [
    "SourceStatus",
    "SourceSummary",
    "captured_tables",
    "list_sources",
    "pause_source",
    "resnapshot_source",
    "resume_source",
    "source_status",
]

log = structlog.get_logger(__name__)

_PREFIX = "scv-"


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


def captured_tables(config: dict[str, str]) -> tuple[str, ...]:
    """The spec's tables, from the rendered table.include.list minus the signal table."""
    signal = config.get("signal.data.collection")
    tables = (t.replace("\\", "") for t in config.get("table.include.list", "").split(",") if t)
    return tuple(t for t in tables if t != signal)


def _config(connect: ConnectClient, name: str) -> dict[str, str]:
    config = connect.get_config(f"{_PREFIX}{name}")
    if config is None:
        raise SourceNotFound(f"no connector {_PREFIX}{name}; see `scv sources list` or onboard it with `add`")
    return config


def _read_secret(settings: Settings, name: str) -> str:
    path = secret_path(settings, name)
    try:
        for line in path.read_text().splitlines():
            if line.startswith("password="):
                # Undo the java.util.Properties escaping applied by connectors/secrets.py.
                raw, out, escaped = line[len("password=") :], [], False
                for char in raw:
                    if escaped:
                        out.append({"n": "\n", "r": "\r", "t": "\t"}.get(char, char))
                        escaped = False
                    elif char == "\\":
                        escaped = True
                    else:
                        out.append(char)
                return "".join(out)
    except OSError as exc:
        raise SourceError(
            f"cannot read the Connect secret {path}: {exc.strerror}; re-run `scv sources add`"
        ) from exc
    raise SourceError(f"{path} has no password= line; re-run `scv sources add`")


def connect_as_source(config: dict[str, str], settings: Settings, name: str) -> psycopg.Connection[TupleRow]:
    """A connection as the source's CDC user, exactly as the connector connects."""
    return psycopg.connect(
        host=config["database.hostname"],
        port=int(config.get("database.port", "5432")),
        dbname=config["database.dbname"],
        user=config["database.user"],
        password=_read_secret(settings, name),
        autocommit=True,
        connect_timeout=5,
        application_name=f"scv-sources-{name}",
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
    with ConnectClient(settings.kafka.connect_url) as connect:
        for connector in connect.connectors():
            if not connector.startswith(_PREFIX):
                continue
            name = connector[len(_PREFIX) :]
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
    with ConnectClient(settings.kafka.connect_url) as connect:
        config = _config(connect, name)
        status = connect.status(f"{_PREFIX}{name}")
    assert status is not None
    slot = config.get("slot.name", f"scv_{name}")
    prefix = config.get("topic.prefix", name)
    tables = captured_tables(config)
    lag: int | None = None
    active: bool | None = None
    try:
        with connect_as_source(config, settings, name) as conn:
            row = conn.execute(
                "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            if row is not None:
                active, lag = bool(row[0]), int(row[1]) if row[1] is not None else None
    except (psycopg.Error, SourceError) as exc:
        log.warning("sources.status_database_unreachable", source=name, error=str(exc).splitlines()[0])
    return SourceStatus(
        name=name,
        connector=status,
        slot_name=slot,
        slot_active=active,
        slot_lag_bytes=lag,
        last_event_at=last_record_time(settings, [f"{prefix}.{t}" for t in tables]),
        last_heartbeat_at=last_record_time(settings, [heartbeat_topic(prefix)]),
        tables=tables,
    )


def pause_source(name: str, settings: Settings) -> None:
    """Pause the connector. The slot keeps every change, so nothing is lost; WAL accumulates meanwhile."""
    with ConnectClient(settings.kafka.connect_url) as connect:
        _config(connect, name)
        connect.pause(f"{_PREFIX}{name}")
    log.info("sources.paused", source=name)


def resume_source(name: str, settings: Settings) -> None:
    with ConnectClient(settings.kafka.connect_url) as connect:
        _config(connect, name)
        connect.resume(f"{_PREFIX}{name}")
    log.info("sources.resumed", source=name)


def resnapshot_source(name: str, settings: Settings, tables: list[str] | None = None) -> str:
    """Insert an ``execute-snapshot`` signal (incremental) for ``tables`` (default: all); returns its id.

    Debezium re-reads the tables in chunks while streaming goes on; the re-emitted rows are op=r with
    source.snapshot=incremental, which the replicator applies like any read.
    """
    with ConnectClient(settings.kafka.connect_url) as connect:
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
            f"connector {_PREFIX}{name} has no signal.data.collection; re-run `scv sources add`"
        )
    signal_id = f"scv-{uuid.uuid4()}"
    data = json.dumps({"data-collections": chosen, "type": "incremental"})
    schema, table = signal_table.split(".", 1)
    with connect_as_source(config, settings, name) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                sql.Identifier(schema, table)
            ),
            (signal_id, data),
        )
    log.info("sources.resnapshot_signalled", source=name, tables=chosen, signal_id=signal_id)
    return signal_id
