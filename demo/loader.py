"""Writes generated rows into the demo databases: schema, COPY, identity sequences.

apply_schema(conn, "crm")
copy_batch({"crm": conn}, batch)
advance_identities(conn, "crm")
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from demo.generator import Batch
from demo.model import TABLES

__all__ = ["advance_identities", "apply_schema", "copy_batch", "count_rows", "schema_sql"]


def schema_sql(dbname: str) -> str:
    return resources.files("demo").joinpath("sql").joinpath(f"{dbname}.sql").read_text()


def apply_schema(conn: psycopg.Connection[TupleRow], dbname: str) -> None:
    # No parameters, so psycopg uses the simple query protocol, which runs the whole script.
    conn.execute(schema_sql(dbname))


def copy_batch(conns: Mapping[str, psycopg.Connection[TupleRow]], batch: Batch) -> int:
    """COPY the batch's rows of every database in ``conns``; returns the number of rows written."""
    written = 0
    for dbname, conn in conns.items():
        with conn.cursor() as cur:
            for table in TABLES[dbname]:
                rows = batch.rows[f"{dbname}.{table.name}"]
                if not rows:
                    continue
                statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
                    table=sql.Identifier("public", table.name),
                    columns=sql.SQL(", ").join(sql.Identifier(c) for c in table.columns),
                )
                with cur.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
                written += len(rows)
    return written


def advance_identities(conn: psycopg.Connection[TupleRow], dbname: str) -> None:
    """Move each identity sequence past the ids COPY wrote explicitly.

    COPY with explicit ids does not touch the sequence; without this, the first INSERT that takes a
    default id would collide with seeded row 1.
    """
    for table in TABLES[dbname]:
        if table.identity is None:
            continue
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({qualified}, {column}), "
                "coalesce(max({ident}), 0) + 1, false) FROM {table}"
            ).format(
                qualified=sql.Literal(f"public.{table.name}"),
                column=sql.Literal(table.identity),
                ident=sql.Identifier(table.identity),
                table=sql.Identifier("public", table.name),
            )
        )


def count_rows(conn: psycopg.Connection[TupleRow], dbname: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLES[dbname]:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table.name))
        ).fetchone()
        counts[table.name] = int(row[0]) if row else 0
    return counts
