"""Views written straight through the store's writer, for the read side's tests: the same rows the
replicator writes, without waiting for Debezium."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from cassandra.cluster import Session

from scv.contracts.cells import AttributeValue, Json
from store.mutations import DeleteRow, PutRow, RowKey
from store.writer import ViewWriter

TYPED: dict[str, AttributeValue] = {
    "balance": Decimal("12345678901234.5678"),
    "seen_at": datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
    "ref": UUID("12345678-1234-5678-1234-567812345678"),
    "prefs": Json('{"lang": "it", "n": 1.50}'),
    "tags": ["a", "b c"],
    "nick": None,
}


def new_customer(prefix: str = "read") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_us() -> int:
    return time.time_ns() // 1000


def write_view(session: Session, keyspace: str, customer_id: str, sections: dict[str, int]) -> list[RowKey]:
    """``sections``: kind -> how many entities; entity ids are zero-padded so they sort by number."""
    ts = now_us()
    rows = [
        PutRow(
            RowKey(customer_id, kind, "crm", "public.items", f"{number:05d}"),
            {"name": f"{kind} {number}", **TYPED},
            True,
            ts,
            ts,
        )
        for kind, count in sections.items()
        for number in range(count)
    ]
    ViewWriter(session, keyspace).apply(rows)
    return [row.key for row in rows]


def delete_entity(session: Session, keyspace: str, key: RowKey) -> None:
    ViewWriter(session, keyspace).apply([DeleteRow(key, now_us())])
