"""What `scv verify` compares for one table: its identity columns and the columns the view holds.

    scope = table_scope(mapping.tables["public.customers"], facts, config)

Built from the source's registration (which columns reach the view, which arrive masked) and the live
table (column types, primary key). A column excluded from capture, or hashed/masked by Debezium at the
source, cannot be compared with the source's clear value and is left out. A column the table gained
since its rows last changed is compared, and differs: the view does not have it yet (a resnapshot —
`scv verify --repair` — brings it).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.database import TableFacts
from scv.contracts.registration import TableMapping

__all__ = ["TableScope", "table_scope"]


@dataclass(frozen=True)
class TableScope:
    source: str
    table: str  # schema.table
    kind: str
    # (column, format_type) of the columns identifying a row: the mapping's entity id, else the PK.
    key_columns: tuple[tuple[str, str], ...]
    # (column, format_type) of the compared columns, sorted by name (the order rows are hashed in).
    columns: tuple[tuple[str, str], ...]
    row_estimate: int

    @property
    def qualified_sql(self) -> str:
        schema, table = self.table.split(".", 1)
        return f'"{schema}"."{table}"'


def table_scope(mapping: TableMapping, facts: TableFacts) -> TableScope:
    if not facts.exists:
        raise ValueError(f"{mapping.source}/{mapping.table} does not exist in the source database")
    keys = mapping.entity_id or facts.primary_key
    if not keys:
        raise ValueError(
            f"{mapping.source}/{mapping.table} has no primary key and the spec no entity_id: rows cannot be "
            f"matched one to one"
        )
    excluded = set(mapping.exclude_columns) | set(mapping.masked_columns)
    included = set(mapping.include_columns) | set(keys) if mapping.include_columns is not None else None
    columns = tuple(
        (name, column.type)
        for name, column in sorted(facts.columns.items())
        if name not in excluded and (included is None or name in included)
    )
    return TableScope(
        source=mapping.source,
        table=mapping.table,
        kind=mapping.kind,
        key_columns=tuple((name, facts.columns[name].type) for name in keys),
        columns=columns,
        row_estimate=facts.row_estimate,
    )
