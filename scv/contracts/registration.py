"""The registration mapping: what `scv sources add` hands the replicator through the store.

    mapping = SourceMapping.build("crm", "crm", [TableMapping("crm", "public.customers", "profile",
                                                             customer_key="customer_id")])
    registrations.put(mapping.name, mapping.to_json())       # connectors/onboard.py
    SourceMapping.from_json(text).tables["public.customers"]  # consumer/catalog.py

Only what the replicator needs travels (kinds, keys, entity ids, NULL policy): never the database
address or credentials. Fields derived from the others (``children``) are computed when the object is
built, so both sides see the same derivation; the JSON carries only what the DBA declared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["NullPolicy", "RegistrationError", "SourceMapping", "TableMapping"]

NullPolicy = Literal["dead_letter", "skip"]


class RegistrationError(ValueError):
    """A registration's JSON does not have the documented shape."""


@dataclass(frozen=True)
class TableMapping:
    source: str
    table: str  # schema.table
    kind: str
    customer_key: str | None = None
    via_table: str | None = None
    via_column: str | None = None
    entity_id: tuple[str, ...] | None = None
    null_customer_key: NullPolicy = "dead_letter"
    # Tables of the same source whose customer is resolved through this one (derived by SourceMapping).
    children: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_via(self) -> bool:
        return self.via_table is not None

    @property
    def placing_columns(self) -> frozenset[str]:
        """The columns the replicator places rows by: customer key (or via column) and entity id."""
        columns = {self.via_column if self.is_via else self.customer_key, *(self.entity_id or ())}
        return frozenset(c for c in columns if c)

    def _declared(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "customer_key": self.customer_key,
            "via_table": self.via_table,
            "via_column": self.via_column,
            "entity_id": list(self.entity_id) if self.entity_id else None,
            "null_customer_key": self.null_customer_key,
        }


@dataclass(frozen=True)
class SourceMapping:
    name: str
    topic_prefix: str
    tables: Mapping[str, TableMapping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        children: dict[str, list[str]] = {}
        for name, table in self.tables.items():
            if table.via_table:
                children.setdefault(table.via_table, []).append(name)
        derived = {
            name: replace(table, children=tuple(sorted(children.get(name, []))))
            for name, table in self.tables.items()
        }
        object.__setattr__(self, "tables", derived)

    @classmethod
    def build(cls, name: str, topic_prefix: str, tables: Iterable[TableMapping]) -> SourceMapping:
        return cls(name, topic_prefix, {table.table: table for table in tables})

    def topic_for(self, table: str) -> str:
        return f"{self.topic_prefix}.{table}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "topic_prefix": self.topic_prefix,
                "tables": {name: t._declared() for name, t in sorted(self.tables.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> SourceMapping:
        """Parse a registration; ``RegistrationError`` names what is wrong."""
        try:
            data = json.loads(text)
            name = data["name"]
            raw_tables: dict[str, dict[str, Any]] = data["tables"]
            tables = [_table(name, table, spec) for table, spec in raw_tables.items()]
            return cls.build(name, data.get("topic_prefix") or name, tables)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistrationError(f"not a source registration: {exc!r}") from exc


def _table(source: str, table: str, spec: dict[str, Any]) -> TableMapping:
    declared = spec.get("null_customer_key") or "dead_letter"
    if declared not in ("dead_letter", "skip"):
        raise ValueError(f"{table}: null_customer_key {declared!r} is not dead_letter or skip")
    policy: NullPolicy = "skip" if declared == "skip" else "dead_letter"
    return TableMapping(
        source=source,
        table=table,
        kind=spec["kind"],
        customer_key=spec.get("customer_key"),
        via_table=spec.get("via_table"),
        via_column=spec.get("via_column"),
        entity_id=tuple(spec["entity_id"]) if spec.get("entity_id") else None,
        null_customer_key=policy,
    )
