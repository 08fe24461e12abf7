"""Each source as Kafka Connect and its PostgreSQL see it: connector and task states, the slot.

    with SourceReader(settings.connect, timeout_s=5) as reader:
        for reading in reader.read():      # one Connect request, one query per source database
            reading.facts.connector_state, reading.wal

Sources are found through Kafka Connect: every connector named ``scv-<source>`` is one, and its
config names the database, the slot and the captured tables. The slot is read as the source's CDC
user (its password from the Connect secret file), exactly as `scv sources status` does, so the
exporter needs no superuser on the systems of record. Connections are kept between rounds and
reopened after an error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

import psycopg
import structlog
from psycopg.rows import TupleRow

from connectors.connect import ConnectClient, ConnectorStatus
from connectors.exceptions import SourceError
from connectors.operate import captured_tables, connect_as_source
from scv.config.settings import ConnectSettings
from scv.contracts.naming import SourceNames
from scv.exporter.facts import SlotFacts, SourceFacts, TaskFacts

__all__ = ["SourceReader", "SourceReading", "WalPositions"]

log = structlog.get_logger(__name__)

# LSNs as byte positions (pg_lsn - '0/0' is numeric): comparable and subtractable in Python.
_SLOT_QUERY = """
SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::numeric,
       s.slot_name IS NOT NULL, coalesce(s.active, false),
       (s.restart_lsn - '0/0'::pg_lsn)::numeric,
       (s.confirmed_flush_lsn - '0/0'::pg_lsn)::numeric,
       s.wal_status
FROM (VALUES (1)) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = %s
"""


@dataclass(frozen=True)
class WalPositions:
    """The server's current WAL position and the slot's two positions (None: the slot has none)."""

    current: int
    restart: int | None
    confirmed_flush: int | None


@dataclass(frozen=True)
class SourceReading:
    facts: SourceFacts
    wal: WalPositions | None


def _first_line(trace: str | None) -> str | None:
    """The root cause of a Java stack trace as ``Exception: message``: the deepest "Caused by:" that
    has a message (Debezium wraps every failure in the same ConnectException), with the class of any
    deeper, message-less cause in parentheses (``PSQLException: connection failed (EOFException)``)."""
    if not trace:
        return None
    lines = trace.strip().splitlines()
    chain = [
        lines[0],
        *(line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")),
    ]
    parsed = []
    for cause in chain:
        exception, _, message = cause.partition(": ")
        parsed.append((exception.rsplit(".", 1)[-1], message.strip()))
    with_message = [i for i, (_name, message) in enumerate(parsed) if message]
    if not with_message:
        return parsed[-1][0]
    at = with_message[-1]
    name, message = parsed[at]
    deeper = ", ".join(n for n, _m in parsed[at + 1 :])
    return f"{name}: {message}{f' ({deeper})' if deeper else ''}"[:300]


class SourceReader:
    def __init__(self, connect: ConnectSettings, timeout_s: float) -> None:
        self._connect_settings = connect
        self._timeout_s = timeout_s
        self._client = ConnectClient(connect.url, timeout_s=timeout_s)
        self._connections: dict[str, psycopg.Connection[TupleRow]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()
        for source in list(self._connections):
            self._drop(source)

    def read(self) -> list[SourceReading]:
        """Every source; raises ``connectors.exceptions.ConnectError`` when Connect does not answer."""
        readings: list[SourceReading] = []
        seen: set[str] = set()
        for connector, (config, status) in self._client.overview().items():
            names = SourceNames.of_connector(connector)
            if names is None:
                continue
            seen.add(names.source)
            readings.append(self._reading(names, config, status))
        for gone in set(self._connections) - seen:
            self._drop(gone)
        return readings

    def _reading(self, names: SourceNames, config: dict[str, str], status: ConnectorStatus) -> SourceReading:
        tasks = tuple(
            TaskFacts(t.id, t.state, _first_line(t.trace) if t.state == "FAILED" else None)
            for t in status.tasks
        )
        slot_name = config.get("slot.name", names.slot)
        base = SourceFacts(
            source=names.source,
            connector=names.connector,
            connector_state="MISSING" if status.state == "UNKNOWN" else status.state,
            connector_error=_first_line(status.failed_trace) if status.state == "FAILED" else None,
            tasks=tasks,
            topics=tuple(names.topic(t) for t in captured_tables(config)),
            heartbeat_topic=names.heartbeat_topic,
            database_up=None,
        )
        try:
            row = self._query(names.source, config)
        except (psycopg.Error, SourceError, KeyError) as exc:
            self._drop(names.source)
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("exporter.source_database_unreachable", source=names.source, error=error)
            return SourceReading(replace(base, database_up=False, database_error=error), None)
        current, exists, active, restart, confirmed, wal_status = row
        wal = WalPositions(
            int(current),
            None if restart is None else int(restart),
            None if confirmed is None else int(confirmed),
        )
        slot = SlotFacts(
            name=slot_name,
            exists=bool(exists),
            active=bool(active),
            retained_wal_bytes=None if wal.restart is None else max(0, wal.current - wal.restart),
            confirmed_lag_bytes=None
            if wal.confirmed_flush is None
            else max(0, wal.current - wal.confirmed_flush),
            wal_status=wal_status,
        )
        return SourceReading(replace(base, database_up=True, slot=slot), wal)

    def _query(self, source: str, config: dict[str, str]) -> tuple[Any, ...]:
        conn = self._connections.get(source)
        if conn is None or conn.closed:
            conn = connect_as_source(config, self._connect_settings, source)
            # A database that hangs must not hold the round: the query is bounded like the connect.
            conn.execute(f"SET statement_timeout = {int(self._timeout_s * 1000)}")
            self._connections[source] = conn
        row = conn.execute(_SLOT_QUERY, (config.get("slot.name", SourceNames(source).slot),)).fetchone()
        assert row is not None  # a left join of one VALUES row returns one row
        return tuple(row)

    def _drop(self, source: str) -> None:
        conn = self._connections.pop(source, None)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
