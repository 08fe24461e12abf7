"""The read client: a customer's view, typed.

reader = ViewReader(session, "scv")
view = reader.get("42")                 # raises CustomerNotFound
view.sections["email"][0].attributes   # {'email': 'a@b.c', 'is_primary': True, ...}
view.to_json()                          # the documented read contract
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

from scv.contracts.cells import AttributeValue, decode_value, to_json_compatible
from store.exceptions import CustomerNotFound, StoreUnavailable
from store.session import TRANSIENT_ERRORS

__all__ = ["CustomerView", "EntityView", "ViewReader"]


@dataclass(frozen=True)
class EntityView:
    id: str
    source: str
    table: str
    attributes: dict[str, AttributeValue]
    source_ts: datetime
    applied_ts: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "table": self.table,
            "attributes": {k: to_json_compatible(v) for k, v in sorted(self.attributes.items())},
            "source_ts": self.source_ts.isoformat(),
            "applied_ts": self.applied_ts.isoformat(),
        }


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    sections: dict[str, list[EntityView]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "sections": {
                kind: [entity.to_json() for entity in entities] for kind, entities in self.sections.items()
            },
        }


def _from_us(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


class ViewReader:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._select = session.prepare(
            f"SELECT kind, source, table_name, entity_id, attributes, source_ts_us, applied_at "
            f"FROM {keyspace}.customer_view WHERE customer_id = ?"
        )

    def get(self, customer_id: str) -> CustomerView:
        try:
            rows = list(self._session.execute(self._select, (customer_id,)))
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"reading customer {customer_id} failed: {exc}") from exc
        if not rows:
            raise CustomerNotFound(f"no view for customer {customer_id!r}")
        sections: dict[str, list[EntityView]] = {}
        for row in rows:
            sections.setdefault(row.kind, []).append(
                EntityView(
                    id=row.entity_id,
                    source=row.source,
                    table=row.table_name,
                    attributes={k: decode_value(v) for k, v in (row.attributes or {}).items()},
                    source_ts=_from_us(row.source_ts_us or 0),
                    applied_ts=row.applied_at.replace(tzinfo=UTC),
                )
            )
        return CustomerView(customer_id, sections)
