"""Facts about a source database, read from its catalogs: the I/O edge of validation.

    with connect_source(spec) as conn:
        facts = read_facts(conn, spec)
    problems = check(spec, facts, ...)            # connectors/validate.py, pure

Everything here runs as the spec's CDC user, so a missing privilege shows up exactly as Debezium
will meet it. pg_catalog (not information_schema) is queried: information_schema hides tables the
user cannot read, and "no SELECT" must be told apart from "no such table".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg.rows import TupleRow

from connectors.spec import SourceSpec

__all__ = [
    "ColumnFacts",
    "DatabaseFacts",
    "PublicationFacts",
    "RoleFacts",
    "ServerFacts",
    "SlotFacts",
    "TableFacts",
    "connect_source",
    "read_facts",
    "read_table",
]

_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    type: str  # format_type(), e.g. 'bigint', 'character varying(42)', 'numeric(12,2)'
    not_null: bool
    has_default: bool


@dataclass(frozen=True)
class TableFacts:
    name: str  # schema.table
    exists: bool
    columns: dict[str, ColumnFacts] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    # pg_class.relreplident: d(efault) = key only in before-images, f(ull), i(ndex), n(othing).
    replica_identity: str = "d"
    can_select: bool = False
    can_insert: bool = False
    can_update: bool = False
    owned_by_user: bool = False
    row_estimate: int = 0


@dataclass(frozen=True)
class ServerFacts:
    wal_level: str
    max_replication_slots: int
    used_replication_slots: int
    max_wal_senders: int
    used_wal_senders: int


@dataclass(frozen=True)
class RoleFacts:
    name: str
    superuser: bool
    replication: bool
    # CREATE on the database: what Debezium's `filtered` mode needs to create the publication.
    can_create: bool = False


@dataclass(frozen=True)
class SlotFacts:
    name: str
    database: str | None
    plugin: str | None
    active: bool


@dataclass(frozen=True)
class PublicationFacts:
    name: str
    all_tables: bool
    tables: frozenset[str]


@dataclass(frozen=True)
class DatabaseFacts:
    server: ServerFacts
    role: RoleFacts
    tables: dict[str, TableFacts]
    slots: dict[str, SlotFacts]
    publication: PublicationFacts | None


def connect_source(spec: SourceSpec, *, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
    """A connection as the spec's CDC user (password read from its env var/file, never logged)."""
    db = spec.database
    return psycopg.connect(
        host=db.host,
        port=db.port,
        dbname=db.dbname,
        user=db.user,
        password=db.password(),
        autocommit=autocommit,
        connect_timeout=_CONNECT_TIMEOUT_S,
        application_name=f"scv-sources-{spec.name}",
    )


def _server(conn: psycopg.Connection[TupleRow]) -> ServerFacts:
    row = conn.execute(
        """
        SELECT current_setting('wal_level'),
               current_setting('max_replication_slots')::int,
               (SELECT count(*) FROM pg_replication_slots)::int,
               current_setting('max_wal_senders')::int,
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int
        """
    ).fetchone()
    assert row is not None
    return ServerFacts(*row)


def _role(conn: psycopg.Connection[TupleRow]) -> RoleFacts:
    row = conn.execute(
        "SELECT rolname, rolsuper, rolreplication, has_database_privilege(current_database(), 'CREATE') "
        "FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row is not None
    return RoleFacts(*row)


def read_table(conn: psycopg.Connection[TupleRow], qualified: str) -> TableFacts:
    schema, table = qualified.split(".", 1)
    row = conn.execute(
        """
        SELECT c.oid, c.relreplident,
               has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
               has_table_privilege(c.oid, 'UPDATE'), pg_has_role(c.relowner, 'USAGE'),
               greatest(c.reltuples, 0)::bigint
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
        """,
        (schema, table),
    ).fetchone()
    if row is None:
        return TableFacts(name=qualified, exists=False)
    oid, replident, can_select, can_insert, can_update, owned, estimate = row
    columns = {
        name: ColumnFacts(name, type_, not_null, has_default)
        for name, type_, not_null, has_default in conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
            FROM pg_attribute a
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (oid,),
        ).fetchall()
    }
    primary_key = tuple(
        name
        for (name,) in conn.execute(
            """
            SELECT a.attname
            FROM pg_index i
            JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = %s AND i.indisprimary
            ORDER BY k.ord
            """,
            (oid,),
        ).fetchall()
    )
    return TableFacts(
        name=qualified,
        exists=True,
        columns=columns,
        primary_key=primary_key,
        replica_identity=str(replident),
        can_select=bool(can_select),
        can_insert=bool(can_insert),
        can_update=bool(can_update),
        owned_by_user=bool(owned),
        row_estimate=int(estimate),
    )


def _slots(conn: psycopg.Connection[TupleRow]) -> dict[str, SlotFacts]:
    rows = conn.execute("SELECT slot_name, database, plugin, active FROM pg_replication_slots").fetchall()
    return {name: SlotFacts(name, database, plugin, bool(active)) for name, database, plugin, active in rows}


def _publication(conn: psycopg.Connection[TupleRow], name: str) -> PublicationFacts | None:
    row = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    if row is None:
        return None
    tables = frozenset(
        f"{schema}.{table}"
        for schema, table in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (name,)
        ).fetchall()
    )
    return PublicationFacts(name=name, all_tables=bool(row[0]), tables=tables)


def read_facts(conn: psycopg.Connection[TupleRow], spec: SourceSpec) -> DatabaseFacts:
    names = [*spec.tables]
    for extra in (spec.signal_table, spec.heartbeat_table):
        if extra not in names:
            names.append(extra)
    for table in spec.tables.values():
        via = table.via
        if via and via.source is None and via.table not in names:
            names.append(via.table)
    return DatabaseFacts(
        server=_server(conn),
        role=_role(conn),
        tables={name: read_table(conn, name) for name in names},
        slots=_slots(conn),
        publication=_publication(conn, spec.names.publication),
    )
