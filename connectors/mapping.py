"""The replicator's mapping of a source, derived from the DBA's spec.

    registrations.put(spec.name, mapping_from_spec(spec).to_json())

Only what the replicator needs travels (kinds, keys, entity ids, NULL policy): never the database
address or credentials.
"""

from __future__ import annotations

from connectors.spec import SourceSpec
from consumer.mapping import SourceMapping, TableMapping

__all__ = ["mapping_from_spec"]


def mapping_from_spec(spec: SourceSpec) -> SourceMapping:
    tables: dict[str, TableMapping] = {}
    for name, table in spec.tables.items():
        via = table.via
        tables[name] = TableMapping(
            source=spec.name,
            table=name,
            kind=table.kind,
            customer_key=None if via else str(table.customer_key),
            via_table=via.via if via else None,
            via_column=via.column if via else None,
            entity_id=tuple(table.entity_id) if table.entity_id else None,
            null_customer_key=table.null_customer_key or "dead_letter",
        )
    # Round-trip through JSON so `children` is derived exactly as the replicator derives it.
    return SourceMapping.from_json(SourceMapping(spec.name, spec.topic_prefix, tables).to_json())
