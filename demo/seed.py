"""``scv demo seed``: the three demo systems of record, created, filled and marked as seeded.

    report = seed_demo(get_settings(), customers=1000, seed=42)
    report.databases[0].action  # 'seeded' | 'already_seeded'

The protocol, per database, in this order:

1. ``--reset`` drops it (after dropping its inactive replication slots; an active slot means a
   running connector, and the seed refuses rather than pull a database from under it).
2. Its state decides: absent -> create; marked with the same (customers, seed) -> nothing to load;
   marked otherwise, or holding tables without a mark -> refuse and name ``--reset``.
3. The CDC roles are created or re-aligned (cluster-wide, idempotent).
4. Schema, grants, every generated row (COPY), identity sequences and the seed mark are written in
   ONE transaction per database. So a database is either fully seeded and marked or, after a
   crash, empty and unmarked; a rerun then loads it and skips the others. No duplicate rows.

The mark is the database's comment, not a table, so it is invisible to CDC and to the view.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from demo.connect import connect
from demo.exceptions import SeedConflict
from demo.generator import generate
from demo.loader import advance_identities, apply_schema, copy_batch, count_rows
from demo.model import database_names, published_tables
from demo.roles import ensure_publication, ensure_role, grant_cdc, publication_name
from demo.secrets import CDC_ROLES, password_path
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames

__all__ = ["DatabaseOutcome", "SeedReport", "seed_demo"]

log = structlog.get_logger(__name__)

# Bump when the schema under demo/sql/ changes, so an old seed is recognised as different.
SCHEMA_VERSION: Final = 1
_MARK = re.compile(r"^scv-demo customers=(\d+) seed=(-?\d+) schema=(\d+)$")

_SLOT_RELEASE_S: Final = 15.0

Action = Literal["seeded", "already_seeded"]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class DatabaseOutcome:
    name: str  # the PostgreSQL database
    source: str  # the demo system it holds: crm, core or care
    created: bool  # the database itself was created (or recreated) by this run
    action: Action
    rows: dict[str, int]


@dataclass(frozen=True)
class SeedReport:
    customers: int
    seed: int
    databases: tuple[DatabaseOutcome, ...]
    roles_created: tuple[str, ...]
    secrets_dir: str
    elapsed_s: float


def _mark(customers: int, seed: int) -> str:
    return f"scv-demo customers={customers} seed={seed} schema={SCHEMA_VERSION}"


def _drop(admin: psycopg.Connection[TupleRow], dbname: str) -> None:
    # The walsender of a just-deleted connector lingers a few seconds; give it that long.
    deadline = time.monotonic() + _SLOT_RELEASE_S
    while True:
        slots = admin.execute(
            "SELECT slot_name, active FROM pg_replication_slots WHERE database = %s", (dbname,)
        ).fetchall()
        if not any(active for _, active in slots) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for slot_name, active in slots:
        if active:
            names = SourceNames.of_slot(slot_name)
            remove = f"`scv sources remove {names.source} --yes`" if names else "its connector"
            raise SeedConflict(
                f"database {dbname} has replication slot {slot_name} in use by a running connector; "
                f"delete that connector first ({remove}), then rerun `scv demo seed --reset`"
            )
        # A slot pins its database; DROP DATABASE refuses while one exists, even WITH (FORCE).
        admin.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))
        log.info("demo_slot_dropped", database=dbname, slot=slot_name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    log.info("demo_database_dropped", database=dbname)


def _needs_load(
    admin: psycopg.Connection[TupleRow], settings: Settings, dbname: str, mark: str
) -> bool | None:
    """None if the database is absent, True if it exists empty, False if seeded with ``mark``."""
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (dbname,)
    ).fetchone()
    if row is None:
        return None
    comment = row[0] or ""
    if comment == mark:
        return False
    found = _MARK.match(comment)
    if found:
        raise SeedConflict(
            f"database {dbname} is already seeded with customers={found[1]} seed={found[2]} "
            f"(schema {found[3]}); rerun with --reset to replace it, or ask for that seed"
        )
    with connect(settings, dbname) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    if tables and tables[0]:
        raise SeedConflict(
            f"database {dbname} exists with tables but no demo seed mark (not the demo's, or seeded by "
            f"an older scv); rerun with --reset to drop and recreate it"
        )
    return True


def seed_demo(
    settings: Settings,
    *,
    customers: int = 1000,
    seed: int = 42,
    reset: bool = False,
    database_prefix: str = "",
    batch_size: int = 2000,
    on_progress: ProgressCallback | None = None,
) -> SeedReport:
    """Create and fill the demo databases; see the module docstring for the protocol.

    ``database_prefix`` names the databases ``<prefix>crm`` etc., so tests can seed beside the demo
    that connectors are streaming from. ``on_progress(done, total)`` is called with customer counts
    after each batch that loads data. Raises ``PostgresUnavailable`` when the server does not answer,
    ``SeedConflict`` when a database holds something else.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    names = database_names(database_prefix)
    started = time.monotonic()
    mark = _mark(customers, seed)
    with connect(settings) as admin:
        if reset:
            for name in names.values():
                _drop(admin, name)
        state = {db: _needs_load(admin, settings, name, mark) for db, name in names.items()}
        created = []
        for db, needs in state.items():
            if needs is None:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[db])))
                created.append(db)
                log.info("demo_database_created", database=names[db])
        roles_created = tuple(role for role in CDC_ROLES.values() if ensure_role(admin, settings, role))

    # Keyed by the logical name (crm, core, care): that is what the schema files and TABLES use.
    conns = {
        db: connect(settings, names[db], autocommit=False)
        for db, needs in state.items()
        if needs is not False
    }
    try:
        for db, conn in conns.items():
            apply_schema(conn, db)
        if conns:
            done = 0
            for batch in generate(customers, seed, batch_size):
                copy_batch(conns, batch)
                done += batch.customers
                if on_progress is not None:
                    on_progress(done, customers)
        for db, conn in conns.items():
            advance_identities(conn, db)
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(names[db]), sql.Literal(mark))
            )
            conn.commit()
            log.info("demo_database_seeded", database=names[db], customers=customers, seed=seed)
    finally:
        for conn in conns.values():
            conn.close()  # rolls back whatever was not committed

    outcomes = []
    for db, name in names.items():
        with connect(settings, name) as conn:
            # CDC access is re-applied on every run: idempotent, and it repairs a role dropped by hand
            # or a publication dropped by `scv sources remove`.
            grant_cdc(conn, dbname=name, role=CDC_ROLES[db])
            ensure_publication(conn, publication_name(db), published_tables(db))
            rows = count_rows(conn, db)
            if db in conns:
                conn.execute("ANALYZE")  # fresh statistics for the workload's lookups
        outcomes.append(
            DatabaseOutcome(
                name=name,
                source=db,
                created=db in created,
                action="seeded" if db in conns else "already_seeded",
                rows=rows,
            )
        )
    if not conns and on_progress is not None:
        on_progress(customers, customers)
    return SeedReport(
        customers=customers,
        seed=seed,
        databases=tuple(outcomes),
        roles_created=roles_created,
        secrets_dir=str(password_path(settings, "x").parent),
        elapsed_s=time.monotonic() - started,
    )
