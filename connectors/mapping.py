"""The replicator's mapping of a source (scv/contracts/registration.py), derived from the DBA's spec.

registrations.put(spec.name, mapping_from_spec(spec).to_json())
"""

from __future__ import annotations

from connectors.spec import SourceSpec
from scv.contracts.registration import SourceMapping, TableMapping

__all__ = ["mapping_from_spec"]


def mapping_from_spec(spec: SourceSpec) -> SourceMapping:
    tables = []
    for name, table in spec.tables.items():
        via = table.via
        tables.append(
            TableMapping(
                source=spec.name,
                table=name,
                kind=table.kind,
                customer_key=None if via else str(table.customer_key),
                via_table=via.via if via else None,
                via_column=via.column if via else None,
                entity_id=tuple(table.entity_id) if table.entity_id else None,
                null_customer_key=table.null_customer_key or "dead_letter",
            )
        )
    return SourceMapping.build(spec.name, spec.names.topic_prefix, tables)
