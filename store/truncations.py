"""When each source table was last truncated (its commit time in microseconds), kept in the store.

    log = TruncationLog(session, "scv")
    log.record("crm", "public.orders", 1_733_000_000_000_000)
    log.of_sources(["crm"])      # {("crm", "public.orders"): 1733000000000000}

Written with ``USING TIMESTAMP`` equal to the truncate's time, so replays and concurrent writers
converge on the latest truncate like every other write.
"""

from __future__ import annotations

from collections.abc import Iterable

from cassandra.cluster import Session

from store.exceptions import StoreUnavailable
from store.session import TRANSIENT_ERRORS

__all__ = ["TruncationLog"]


class TruncationLog:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._put = session.prepare(
            f"INSERT INTO {keyspace}.table_truncations (source, table_name, truncated_ts) VALUES (?, ?, ?) "
            "USING TIMESTAMP ?"
        )
        self._of_sources = session.prepare(
            f"SELECT source, table_name, truncated_ts FROM {keyspace}.table_truncations WHERE source IN ?"
        )
        self._delete_source = session.prepare(f"DELETE FROM {keyspace}.table_truncations WHERE source = ?")

    def record(self, source: str, table: str, truncated_ts: int) -> None:
        try:
            self._session.execute(self._put, (source, table, truncated_ts, truncated_ts))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"recording the truncate of {source}/{table}: {exc}") from exc

    def of_sources(self, sources: Iterable[str]) -> dict[tuple[str, str], int]:
        names = sorted(set(sources))
        if not names:
            return {}
        try:
            rows = list(self._session.execute(self._of_sources, (names,)))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"reading table truncations: {exc}") from exc
        return {(row.source, row.table_name): int(row.truncated_ts) for row in rows}

    def forget_source(self, source: str) -> None:
        try:
            self._session.execute(self._delete_source, (source,))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"forgetting the truncates of {source}: {exc}") from exc
