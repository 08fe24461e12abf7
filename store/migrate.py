"""Versioned, idempotent CQL migrations that run unchanged on ScyllaDB and Cassandra.

    applied = migrate(session, keyspace="scv", replication_factor=1, local_dc="datacenter1")

Files are ``migrations/NNNN_name.cql``; statements are separated by ``;`` and use ``{keyspace}``.
Every statement is ``IF NOT EXISTS``-safe, and each applied version is recorded with the checksum of
its file, so re-running is a no-op and an edited, already-applied migration is refused loudly
(changing history silently would leave clusters with different schemas).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from cassandra import InvalidRequest
from cassandra.cluster import Session

from store.exceptions import MigrationError

__all__ = ["Migration", "discover_migrations", "migrate"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def statements(self, keyspace: str) -> list[str]:
        body = "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip().replace("{keyspace}", keyspace) for s in body.split(";") if s.strip()]


def discover_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("store.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


_ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+\S+\s+ADD\s", re.IGNORECASE)


def _execute_idempotently(session: Session, statement: str) -> None:
    """Run one statement; an ``ALTER TABLE ... ADD`` of a column that exists counts as done.

    CREATE statements say IF NOT EXISTS; ADD cannot on every server this runs on (ScyllaDB has no
    ``ADD IF NOT EXISTS``), and a migration interrupted after its first ALTER must be re-runnable.
    """
    try:
        session.execute(statement)
    except InvalidRequest as exc:
        message = str(exc).lower()
        if not (_ADD_COLUMN.match(statement) and ("already" in message or "conflicts" in message)):
            raise


def migrate(session: Session, keyspace: str, replication_factor: int, local_dc: str) -> list[Migration]:
    """Create the keyspace if absent and apply pending migrations in order; returns those applied."""
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{local_dc}': {replication_factor}}}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations "
        "(version int PRIMARY KEY, name text, checksum text, applied_at timestamp)"
    )
    applied = {
        row.version: row.checksum
        for row in session.execute(f"SELECT version, checksum FROM {keyspace}.schema_migrations")
    }
    done = []
    for migration in discover_migrations():
        recorded = applied.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.cql changed after it was "
                    f"applied (checksum {recorded} -> {migration.checksum}); add a new migration "
                    f"instead of editing an applied one"
                )
            continue
        for statement in migration.statements(keyspace):
            _execute_idempotently(session, statement)
        session.execute(
            f"INSERT INTO {keyspace}.schema_migrations (version, name, checksum, applied_at) "
            "VALUES (%s, %s, %s, %s)",
            (migration.version, migration.name, migration.checksum, datetime.now(UTC)),
        )
        done.append(migration)
    return done
