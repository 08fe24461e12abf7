"""The two sides `scv verify` reads: the system of record (hashed by PostgreSQL) and the view (hashed here).

    pg = SourceSide(conn, scope)
    pg.bucket_sums(4096)                    # {bucket: (rows, sum of row-hash prefixes)} in one scan
    view = ViewSide(session, keyspace)
    view.scan(scopes, 4096, on_row=...)     # one paged scan of customer_view for every table in scope

Both sides reduce a table to per-bucket sums of row hashes first (a bucket is a slice of the key hash),
so a clean table costs one scan on each side and no row crosses the network; only the buckets whose
sums differ are read again, row by row, to name the rows that differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from cassandra.cluster import Session
from cassandra.query import SimpleStatement
from psycopg import sql
from psycopg.rows import TupleRow

from scv.contracts.cells import CellDecodeError, decode_value
from scv.verify.canonical import (
    ABSENT_CELL,
    bucket_of,
    bucket_sql,
    key_hash,
    key_hash_sql,
    quote_ident,
    row_hash,
    row_hash_sql,
)
from scv.verify.scope import TableScope
from store.index import EntityIndex
from store.mutations import EntityRef

__all__ = ["BucketSums", "SourceRow", "SourceSide", "ViewRow", "ViewSide"]

# (rows, sum of the first 60 bits of each row hash): equal sums for equal row sets, with a collision
# chance of one in 2^60 per bucket.
BucketSums = dict[int, tuple[int, int]]
_PREFIX_HEX = 15


def _prefix(row_md5: str) -> int:
    return int(row_md5[:_PREFIX_HEX], 16)


@dataclass(frozen=True, slots=True)
class SourceRow:
    key_hash: str
    row_hash: str
    key: tuple[Any, ...]  # the key columns' values, as psycopg reads them


@dataclass(frozen=True, slots=True)
class ViewRow:
    key_hash: str
    row_hash: str
    customer_id: str
    kind: str
    entity_id: str
    source_ts_us: int


class SourceSide:
    """One table of a system of record, read as its CDC user inside one REPEATABLE READ snapshot."""

    def __init__(self, conn: psycopg.Connection[TupleRow], scope: TableScope) -> None:
        self._conn = conn
        self._scope = scope
        self._key_sql = key_hash_sql(scope.key_columns)
        self._row_sql = row_hash_sql(scope.columns)
        # ISO dates and UTC session time: the canonical SQL renders timestamps itself, but ::text
        # fallbacks (infinity) must not depend on the role's settings.
        conn.execute("SET DateStyle = ISO; SET TimeZone = 'UTC'")

    def bucket_sums(self, buckets: int) -> BucketSums:
        query = (
            f"SELECT {bucket_sql('k', buckets)} AS b, count(*), "
            f"sum(('x' || substr(r, 1, {_PREFIX_HEX}))::bit(60)::bigint) "
            f"FROM (SELECT {self._key_sql} AS k, {self._row_sql} AS r FROM {self._scope.qualified_sql}) t "
            "GROUP BY b"
        )
        return {int(b): (int(n), int(total)) for b, n, total in self._conn.execute(query.encode())}

    def rows_in(self, buckets: int, wanted: set[int]) -> dict[str, SourceRow]:
        if not wanted:
            return {}
        keys = ", ".join(f'"{name}"' for name, _type in self._scope.key_columns)
        query = (
            f"SELECT k, r, {keys} FROM (SELECT {self._key_sql} AS k, {self._row_sql} AS r, {keys} "
            f"FROM {self._scope.qualified_sql}) t WHERE {bucket_sql('k', buckets)} = ANY(%s)"
        )
        rows = self._conn.execute(query.encode(), (sorted(wanted),))
        return {k: SourceRow(k, r, tuple(rest)) for k, r, *rest in rows}

    def rows_by_key(self, key_hashes: Iterable[str]) -> dict[str, SourceRow]:
        wanted = sorted(set(key_hashes))
        if not wanted:
            return {}
        keys = ", ".join(f'"{name}"' for name, _type in self._scope.key_columns)
        query = (
            f"SELECT k, r, {keys} FROM (SELECT {self._key_sql} AS k, {self._row_sql} AS r, {keys} "
            f"FROM {self._scope.qualified_sql}) t WHERE k = ANY(%s)"
        )
        return {
            k: SourceRow(k, r, tuple(rest)) for k, r, *rest in self._conn.execute(query.encode(), (wanted,))
        }

    def sample(self, rows: int) -> dict[str, SourceRow]:
        """About ``rows`` random rows (a Bernoulli sample: one pass, no sort of the whole table)."""
        percent = min(100.0, 100.0 * rows * 2 / max(self._scope.row_estimate, 1))
        keys = ", ".join(f'"{name}"' for name, _type in self._scope.key_columns)
        query = (
            f"SELECT {self._key_sql}, {self._row_sql}, {keys} FROM {self._scope.qualified_sql} "
            f"TABLESAMPLE BERNOULLI ({percent}) LIMIT {int(rows)}"
        )
        return {k: SourceRow(k, r, tuple(rest)) for k, r, *rest in self._conn.execute(query.encode())}

    def key_filter(self, keys: Iterable[tuple[Any, ...]]) -> str:
        """An SQL condition selecting the rows with these key values, quoted by psycopg (the filter of
        Debezium's incremental snapshot: it runs on the source, so it should use the key's index)."""
        columns = ", ".join(quote_ident(name) for name, _type in self._scope.key_columns)
        values = ", ".join(
            "(" + ", ".join(sql.Literal(value).as_string(self._conn) for value in key) + ")" for key in keys
        )
        return f"({columns}) IN ({values})"


class ViewSide:
    """The view's rows of the tables in scope, read by one paged scan of customer_view."""

    def __init__(self, session: Session, keyspace: str, fetch_size: int = 2000) -> None:
        self._session = session
        self._keyspace = keyspace
        self._fetch_size = fetch_size
        self._index = EntityIndex(session, keyspace)

    def _rows(self) -> Iterator[Any]:
        statement = SimpleStatement(
            f"SELECT customer_id, kind, source, table_name, entity_id, attributes, source_ts_us, ended_at "
            f"FROM {self._keyspace}.customer_view",
            fetch_size=self._fetch_size,
        )
        yield from self._session.execute(statement)

    def scan(
        self,
        scopes: Mapping[tuple[str, str], TableScope],
        buckets: int,
        *,
        keep: Mapping[tuple[str, str], set[int]] | None = None,
        on_row: Callable[[], None] | None = None,
    ) -> tuple[
        dict[tuple[str, str], BucketSums],
        dict[tuple[str, str], dict[str, list[ViewRow]]],
        dict[tuple[str, str], int],
    ]:
        """(bucket sums per table, the rows of the ``keep`` buckets per table, rows per table of a source
        outside ``scopes``).

        Rows marked ended (deleted at the source, kept as history) are not compared: the source no
        longer has them by design. Rows of sources with no table in scope are counted per source when
        their source is not among ``scopes`` at all (a removed source's leftovers)."""
        sums: dict[tuple[str, str], BucketSums] = {table: {} for table in scopes}
        kept: dict[tuple[str, str], dict[str, list[ViewRow]]] = {table: {} for table in scopes}
        sources = {source for source, _table in scopes}
        others: dict[tuple[str, str], int] = {}
        for row in self._rows():
            if on_row is not None:
                on_row()
            table = (row.source, row.table_name)
            scope = scopes.get(table)
            if scope is None:
                if row.source not in sources:
                    others[table] = others.get(table, 0) + 1
                continue
            if row.ended_at is not None:
                continue
            try:
                cells = {name: decode_value(cell) for name, cell in (row.attributes or {}).items()}
            except CellDecodeError:
                cells = {}
            k = key_hash([cells.get(name) for name, _type in scope.key_columns])
            r = row_hash([cells.get(name, ABSENT_CELL) for name, _type in scope.columns])
            bucket = bucket_of(k, buckets)
            count, total = sums[table].get(bucket, (0, 0))
            sums[table][bucket] = (count + 1, total + _prefix(r))
            if keep is not None and bucket in keep.get(table, ()):
                # A list: a row the view holds twice (in two partitions) is a difference too.
                kept[table].setdefault(k, []).append(
                    ViewRow(k, r, row.customer_id, row.kind, row.entity_id, row.source_ts_us or 0)
                )
        return sums, kept, others

    def read(self, row: ViewRow, scope: TableScope) -> ViewRow | None:
        """One view row again (after the replicator caught up); None once it is gone or ended."""
        found = self._session.execute(
            f"SELECT attributes, source_ts_us, ended_at FROM {self._keyspace}.customer_view "
            "WHERE customer_id = %s AND kind = %s AND source = %s AND table_name = %s AND entity_id = %s",
            (row.customer_id, row.kind, scope.source, scope.table, row.entity_id),
        ).one()
        if found is None or found.ended_at is not None:
            return None
        return self._hashed(
            row.key_hash,
            found.attributes,
            scope,
            row.customer_id,
            row.kind,
            row.entity_id,
            found.source_ts_us or 0,
        )

    def find(self, scope: TableScope, entity_id: str, key: str) -> ViewRow | None:
        """The view row of an entity the scan did not see, found through the entity index."""
        entry = self._index.get_many([EntityRef(scope.source, scope.table, entity_id)]).get(
            EntityRef(scope.source, scope.table, entity_id)
        )
        if entry is None:
            return None
        probe = ViewRow(key, "", entry.customer_id, entry.kind, entity_id, 0)
        return self.read(probe, scope)

    def _hashed(
        self,
        key: str,
        attributes: Mapping[str, str] | None,
        scope: TableScope,
        customer_id: str,
        kind: str,
        entity_id: str,
        source_ts_us: int,
    ) -> ViewRow:
        cells = {name: decode_value(cell) for name, cell in (attributes or {}).items()}
        r = row_hash([cells.get(name, ABSENT_CELL) for name, _type in scope.columns])
        return ViewRow(key, r, customer_id, kind, entity_id, source_ts_us)
