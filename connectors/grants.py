"""Least-privilege SQL a DBA reviews and runs before a source is onboarded.

    print(grant_sql(spec))                      # `scv sources grant-sql FILE`
    apply_grants_locally(spec, settings)        # tests and the local demo only: runs it as superuser

The CDC role gets exactly what Debezium needs: LOGIN REPLICATION (a replication slot), CONNECT on the
database, USAGE on the schemas, SELECT on the captured tables (the snapshot), INSERT/UPDATE/DELETE on
the signal table (incremental-snapshot watermarks) and INSERT/UPDATE on the heartbeat table. The
publication is created here, by a table owner, because PostgreSQL lets only the owner of every table
add it to a publication; Debezium then only uses it (publication.autocreate.mode=disabled).
"""

from __future__ import annotations

import shlex

import psycopg
from psycopg import sql

from connectors.spec import SourceSpec
from scv.config.settings import Settings

__all__ = ["PASSWORD_PLACEHOLDER", "apply_grants_locally", "grant_sql", "grant_statements"]

PASSWORD_PLACEHOLDER = "CHANGE_ME"


def _sql(composed: sql.Composable) -> str:
    # Every identifier and literal is quoted by psycopg (sql.Identifier / sql.Literal), never by hand:
    # a name the spec allows cannot end a quote, a comment or a statement (connectors/spec.py refuses
    # the names no quoting makes safe, such as ones holding control characters).
    return composed.as_string(None)


def _table(qualified: str) -> sql.Identifier:
    schema, table = qualified.split(".", 1)
    return sql.Identifier(schema, table)


def _dollar_quoted(body: str) -> str:
    """A DO block whose dollar-quote tag does not occur in its body (a literal there cannot end it)."""
    tag, n = "$scv$", 0
    while tag in body:
        n += 1
        tag = f"$scv{n}$"
    return f"DO {tag} BEGIN\n{body}\nEND {tag}"


def grant_statements(spec: SourceSpec, *, password_sql: str | None = None) -> list[tuple[str, str]]:
    """(comment, statement) pairs in execution order. ``password_sql`` replaces the placeholder
    literal (e.g. a SCRAM verifier, quoted) when the statements are run by a program."""
    user = spec.database.user
    role = sql.Identifier(user)
    password = sql.SQL(password_sql) if password_sql else sql.Literal(PASSWORD_PLACEHOLDER)
    captured = [*spec.tables, spec.signal_table, spec.heartbeat_table]
    schemas = sorted({t.split(".", 1)[0] for t in captured})
    signal = _table(spec.signal_table)
    heartbeat = _table(spec.heartbeat_table)
    tables = sql.SQL(", ").join(_table(t) for t in captured)
    publication = spec.names.publication
    create_role = _sql(
        sql.SQL(
            "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN\n"
            "    CREATE ROLE {role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE "
            "PASSWORD {password};\n  END IF;"
        ).format(name=sql.Literal(user), role=role, password=password)
    )
    out: list[tuple[str, str]] = [
        (
            "The CDC role: LOGIN for the snapshot, REPLICATION for the slot, nothing else. Set a real "
            "password (and put it where the spec's password_env/password_file points).",
            _dollar_quoted(create_role),
        ),
        (
            "",
            _sql(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(spec.database.dbname), role
                )
            ),
        ),
    ]
    out.extend(
        ("", _sql(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(s), role))) for s in schemas
    )
    out.append(
        (
            "The initial and incremental snapshots SELECT each captured table.",
            _sql(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.SQL(", ").join(_table(t) for t in spec.tables), role
                )
            ),
        )
    )
    publish = _sql(
        sql.SQL(
            "  IF EXISTS (SELECT FROM pg_publication WHERE pubname = {name}) THEN\n"
            "    ALTER PUBLICATION {publication} SET TABLE {tables};\n  ELSE\n"
            "    CREATE PUBLICATION {publication} FOR TABLE {tables};\n  END IF;"
        ).format(name=sql.Literal(publication), publication=sql.Identifier(publication), tables=tables)
    )
    out.extend(
        [
            (
                "Incremental snapshots: `scv sources resnapshot` writes execute-snapshot rows here and "
                "Debezium writes its window markers (id/type/data is Debezium's signal layout).",
                _sql(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (\n  id varchar(42) PRIMARY KEY,\n"
                        "  type varchar(32) NOT NULL,\n  data varchar(2048)\n)"
                    ).format(signal)
                ),
            ),
            ("", _sql(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(signal, role))),
            (
                "Heartbeats: Debezium upserts one row per source so WAL advances on an idle database "
                "and the slot does not hold back the server's WAL.",
                _sql(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (\n  source text PRIMARY KEY,\n"
                        "  beat_at timestamptz NOT NULL\n)"
                    ).format(heartbeat)
                ),
            ),
            ("", _sql(sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(heartbeat, role))),
            (
                "The publication Debezium reads: the captured tables, the signal table (its window "
                "markers must stream back) and the heartbeat table (its changes advance the slot).",
                # ALTER on a re-run rather than DROP + CREATE: a running connector's walsender
                # would fail on a publication that disappears under it.
                _dollar_quoted(publish),
            ),
        ]
    )
    return out


def grant_sql(spec: SourceSpec) -> str:
    """The script for the DBA: run it in database ``spec.database.dbname`` as a table owner."""
    dbname = spec.database.dbname
    database = _sql(sql.Identifier(dbname))
    lines = [
        f"-- scv source {spec.name!r}: least-privilege CDC setup for database {database}.",
        f"-- Review, replace {PASSWORD_PLACEHOLDER}, then run as the tables' owner (or a superuser):",
        f"--   psql -d {shlex.quote(dbname)} -v ON_ERROR_STOP=1 -f this-file.sql",
        "-- Server prerequisite (postgresql.conf, needs a restart): wal_level = logical, and one free",
        "-- max_replication_slots and max_wal_senders for this source.",
        "BEGIN;",
    ]
    for comment, statement in grant_statements(spec):
        if comment:
            lines.append("")
            lines.extend(f"-- {part}" for part in comment.split(". ") if part)
        lines.append(statement + ";")
    lines.extend(["", "COMMIT;", ""])
    return "\n".join(lines)


def apply_grants_locally(spec: SourceSpec, settings: Settings) -> None:
    """Run the grant SQL on the local stack as its superuser, with the spec's real password.

    For tests and the demo only (a DBA runs `grant-sql` output on a real server). The password is
    sent as a SCRAM verifier, so the cleartext never reaches the server's logs. An existing role's
    password is reset to the spec's, so a re-run after a password change keeps the connector working.
    """
    with psycopg.connect(settings.postgres.dsn(spec.database.dbname), autocommit=False) as conn:
        password = spec.database.password()
        verifier = conn.pgconn.encrypt_password(
            password.encode(), spec.database.user.encode(), b"scram-sha-256"
        ).decode()
        literal = sql.Literal(verifier).as_string(conn)
        for _comment, statement in grant_statements(spec, password_sql=literal):
            conn.execute(statement.encode())
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
                sql.Identifier(spec.database.user), sql.Literal(verifier)
            )
        )
        conn.commit()
