"""Connections to the local stack's PostgreSQL as its superuser, with errors that say what to start.

with connect(settings, "crm") as conn:
    conn.execute("SELECT count(*) FROM customers")
"""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from demo.exceptions import DemoError, PostgresUnavailable
from scv.config.settings import Settings

__all__ = ["connect"]

# Short: a stack that is down refuses at once, and one that is starting should be waited for by
# `scv stack up`, not by every demo command.
_CONNECT_TIMEOUT_S = 5


def connect(
    settings: Settings, dbname: str = "postgres", *, autocommit: bool = True
) -> psycopg.Connection[TupleRow]:
    pg = settings.postgres
    try:
        return psycopg.connect(
            pg.dsn(dbname),
            autocommit=autocommit,
            connect_timeout=_CONNECT_TIMEOUT_S,
            application_name="scv-demo",
        )
    except psycopg.OperationalError as exc:
        # libpq's message names host and port but never the password; keep its first line only.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if exc.sqlstate is None:
            raise PostgresUnavailable(
                f"PostgreSQL at {pg.host}:{pg.port} is not reachable ({reason}); start the local stack "
                f"with `scv stack up` (or point SCV_STACK__POSTGRES_PORT at a running server)"
            ) from exc
        if exc.sqlstate == "3D000":  # invalid_catalog_name
            raise DemoError(f"database {dbname} does not exist; create it with `scv demo seed`") from exc
        raise DemoError(f"cannot connect to database {dbname} at {pg.host}:{pg.port}: {reason}") from exc
