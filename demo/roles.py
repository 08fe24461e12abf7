"""CDC access to the demo databases, as a DBA would prepare it before `scv sources add`.

    ensure_role(admin, settings, "cdc_crm")                    # cluster-wide, password from demo.secrets
    grant_cdc(conn, dbname="crm", role="cdc_crm")               # in that database, after its schema
    ensure_publication(conn, "scv_crm", ["public.customers"])   # owned by the superuser, not the role

The role gets LOGIN REPLICATION, SELECT on the tables, writes on the signal and heartbeat tables, and
nothing else; so it owns no table and cannot create the publication itself (Debezium runs with
publication.autocreate.mode=disabled against it). Only the demo's own setup: the SQL a DBA runs for a
real source comes from `scv sources grant-sql`.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from demo.secrets import ensure_password
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames

__all__ = ["ensure_publication", "ensure_role", "grant_cdc", "publication_name"]


def ensure_role(admin: psycopg.Connection[TupleRow], settings: Settings, role: str) -> bool:
    """Create the role, or bring an existing one back to exactly these attributes; True if created.

    The password is hashed here (SCRAM-SHA-256, as the server would) so the cleartext never travels
    to the server and cannot surface in its statement log or pg_stat_activity.
    """
    password = ensure_password(settings, role)
    verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
    # Attributes are spelled out so a pre-existing role with more rights is brought down to these.
    admin.execute(
        sql.SQL(
            "{verb} ROLE {role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE "
            "NOBYPASSRLS PASSWORD {verifier}"
        ).format(
            verb=sql.SQL("ALTER" if exists else "CREATE"),
            role=sql.Identifier(role),
            verifier=sql.Literal(verifier),
        )
    )
    return not exists


def grant_cdc(conn: psycopg.Connection[TupleRow], *, dbname: str, role: str) -> None:
    template = resources.files("demo").joinpath("sql").joinpath("cdc_grants.sql").read_text()
    conn.execute(sql.SQL(template).format(dbname=sql.Identifier(dbname), role=sql.Identifier(role)))


def publication_name(source: str) -> str:
    return SourceNames(source).publication


def ensure_publication(conn: psycopg.Connection[TupleRow], name: str, tables: list[str]) -> None:
    """Publish exactly ``tables`` (schema-qualified) under ``name``, creating or altering it.

    ALTER rather than DROP + CREATE on a re-run: a running connector's walsender fails when its
    publication disappears under it.
    """
    table_list = sql.SQL(", ").join(sql.Identifier(*t.split(".", 1)) for t in tables)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    verb = "ALTER PUBLICATION {} SET TABLE {}" if exists else "CREATE PUBLICATION {} FOR TABLE {}"
    conn.execute(sql.SQL(verb).format(sql.Identifier(name), table_list))
