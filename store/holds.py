"""Consumption holds: what the replicator holds back and why, kept in the store so every process of
the group and `scv sources status` see the same thing.

    holds = HoldStore(session, "scv")
    holds.put(Hold("crm", "poison_storm", detail="120 dead letters in 60 s"))
    holds.of_sources(["crm"])              # [Hold(...)]
    holds.delete_source("crm", "poison_storm")

A hold on a whole source has ``topic == ""`` and ``partition == -1``; a partition's hold names both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

from store.exceptions import StoreUnavailable
from store.session import TRANSIENT_ERRORS

__all__ = ["WHOLE_SOURCE", "Hold", "HoldStore"]

WHOLE_SOURCE = ("", -1)


@dataclass(frozen=True)
class Hold:
    source: str
    reason: str
    topic: str = ""
    partition: int = -1
    detail: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def whole_source(self) -> bool:
        return (self.topic, self.partition) == WHOLE_SOURCE


class HoldStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        ks = keyspace
        self._put = session.prepare(
            f"INSERT INTO {ks}.consumption_holds (source, reason, topic, partition, detail, since) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._of_sources = session.prepare(
            f"SELECT source, reason, topic, partition, detail, since FROM {ks}.consumption_holds "
            "WHERE source IN ?"
        )
        self._delete_reason = session.prepare(
            f"DELETE FROM {ks}.consumption_holds WHERE source = ? AND reason = ?"
        )
        self._delete_one = session.prepare(
            f"DELETE FROM {ks}.consumption_holds WHERE source = ? AND reason = ? AND topic = ? "
            "AND partition = ?"
        )

    def put(self, hold: Hold) -> None:
        self._run(self._put, (hold.source, hold.reason, hold.topic, hold.partition, hold.detail, hold.since))

    def of_sources(self, sources: Iterable[str]) -> list[Hold]:
        names = sorted(set(sources))
        if not names:
            return []
        rows = self._run(self._of_sources, (names,))
        return [
            Hold(r.source, r.reason, r.topic, r.partition, r.detail or "", r.since.replace(tzinfo=UTC))
            for r in rows
        ]

    def delete(
        self, source: str, reason: str, topic: str | None = None, partition: int | None = None
    ) -> None:
        """Lift holds of ``source`` for ``reason``: all of them, or the one of ``topic``/``partition``."""
        if topic is None or partition is None:
            self._run(self._delete_reason, (source, reason))
        else:
            self._run(self._delete_one, (source, reason, topic, partition))

    def _run(self, statement: object, params: tuple[object, ...]) -> list[Any]:
        try:
            return list(self._session.execute(statement, params))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"consumption holds: {exc}") from exc
