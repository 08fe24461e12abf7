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

import psycopg
from psycopg import sql

from connectors.spec import SourceSpec
from scv.config.settings import Settings

__all__ = ["PASSWORD_PLACEHOLDER", "apply_grants_locally", "grant_sql", "grant_statements"]

PASSWORD_PLACEHOLDER = "CHANGE_ME"


def _ident(qualified: str) -> str:
    schema, table = qualified.split(".", 1)
    return f'"{schema}"."{table}"' if not (schema.islower() and table.islower()) else qualified


def _role(spec: SourceSpec) -> str:
    user = spec.database.user
    return user if user.islower() and user.replace("_", "").isalnum() else f'"{user}"'


def grant_statements(spec: SourceSpec, *, password_sql: str | None = None) -> list[tuple[str, str]]:
    """(comment, statement) pairs in execution order. ``password_sql`` replaces the placeholder
    literal (e.g. a SCRAM verifier, quoted) when the statements are run by a program."""
    role = _role(spec)
    db = spec.database.dbname
    password = password_sql or f"'{PASSWORD_PLACEHOLDER}'"
    captured = [*spec.tables, spec.signal_table, spec.heartbeat_table]
    schemas = sorted({t.split(".", 1)[0] for t in captured})
    signal = _ident(spec.signal_table)
    heartbeat = _ident(spec.heartbeat_table)
    tables = ", ".join(_ident(t) for t in captured)
    out: list[tuple[str, str]] = [
        (
            "The CDC role: LOGIN for the snapshot, REPLICATION for the slot, nothing else. Set a real "
            "password (and put it where the spec's password_env/password_file points).",
            f"DO $$ BEGIN\n"
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{spec.database.user}') THEN\n"
            f"    CREATE ROLE {role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"PASSWORD {password};\n  END IF;\nEND $$",
        ),
        ("", f'GRANT CONNECT ON DATABASE "{db}" TO {role}'),
    ]
    out.extend(("", f"GRANT USAGE ON SCHEMA {s} TO {role}") for s in schemas)
    out.append(
        (
            "The initial and incremental snapshots SELECT each captured table.",
            f"GRANT SELECT ON {', '.join(_ident(t) for t in spec.tables)} TO {role}",
        )
    )
    out.extend(
        [
            (
                "Incremental snapshots: `scv sources resnapshot` writes execute-snapshot rows here and "
                "Debezium writes its window markers (id/type/data is Debezium's signal layout).",
                f"CREATE TABLE IF NOT EXISTS {signal} (\n  id varchar(42) PRIMARY KEY,\n"
                f"  type varchar(32) NOT NULL,\n  data varchar(2048)\n)",
            ),
            ("", f"GRANT SELECT, INSERT, UPDATE, DELETE ON {signal} TO {role}"),
            (
                "Heartbeats: Debezium upserts one row per source so WAL advances on an idle database "
                "and the slot does not hold back the server's WAL.",
                f"CREATE TABLE IF NOT EXISTS {heartbeat} (\n  source text PRIMARY KEY,\n"
                f"  beat_at timestamptz NOT NULL\n)",
            ),
            ("", f"GRANT SELECT, INSERT, UPDATE ON {heartbeat} TO {role}"),
            (
                "The publication Debezium reads: the captured tables, the signal table (its window "
                "markers must stream back) and the heartbeat table (its changes advance the slot).",
                # ALTER on a re-run rather than DROP + CREATE: a running connector's walsender
                # would fail on a publication that disappears under it.
                f"DO $$ BEGIN\n  IF EXISTS (SELECT FROM pg_publication WHERE pubname = "
                f"'{spec.names.publication}') THEN\n"
                f"    ALTER PUBLICATION {spec.names.publication} SET TABLE {tables};\n  ELSE\n"
                f"    CREATE PUBLICATION {spec.names.publication} FOR TABLE {tables};\n  END IF;\nEND $$",
            ),
        ]
    )
    return out


def grant_sql(spec: SourceSpec) -> str:
    """The script for the DBA: run it in database ``spec.database.dbname`` as a table owner."""
    lines = [
        f"-- scv source {spec.name!r}: least-privilege CDC setup for database {spec.database.dbname}.",
        f"-- Review, replace {PASSWORD_PLACEHOLDER}, then run as the tables' owner (or a superuser):",
        f"--   psql -d {spec.database.dbname} -v ON_ERROR_STOP=1 -f this-file.sql",
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
