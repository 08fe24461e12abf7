"""Source registrations: the mapping of every onboarded source, kept in the store.

The replicator polls this table, so `scv sources add` on any host reaches every replicator without a
file on their hosts or a restart. The mapping is opaque JSON here: its shape is the registration
contract (scv/contracts/registration.py), which both the writer (connectors/) and the reader
(consumer/catalog.py) import — the store only keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra.cluster import Session

from store.exceptions import StoreUnavailable
from store.session import TRANSIENT_ERRORS

__all__ = ["Registration", "RegistrationStore"]


@dataclass(frozen=True)
class Registration:
    name: str
    mapping_json: str
    registered_at: datetime


class RegistrationStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._put = session.prepare(
            f"INSERT INTO {keyspace}.source_registrations (name, mapping, registered_at) VALUES (?, ?, ?)"
        )
        self._delete = session.prepare(f"DELETE FROM {keyspace}.source_registrations WHERE name = ?")
        self._all = session.prepare(
            f"SELECT name, mapping, registered_at FROM {keyspace}.source_registrations"
        )

    def put(self, name: str, mapping_json: str) -> None:
        self._session.execute(self._put, (name, mapping_json, datetime.now(UTC)))

    def delete(self, name: str) -> None:
        self._session.execute(self._delete, (name,))

    def all(self) -> list[Registration]:
        """Every registration; ``StoreUnavailable`` while the store is out (callers retry)."""
        try:
            rows = list(self._session.execute(self._all))
        except TRANSIENT_ERRORS as exc:
            # The replicator polls this every few seconds, idle or not: an outage must reach it as
            # the retried kind of failure, not as a driver error that ends the process.
            raise StoreUnavailable(f"reading source registrations failed: {exc}") from exc
        return [Registration(row.name, row.mapping, row.registered_at.replace(tzinfo=UTC)) for row in rows]
