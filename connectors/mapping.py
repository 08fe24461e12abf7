"""The replicator's mapping of a source (scv/contracts/registration.py), derived from the DBA's spec.

    registrations.put(spec.name, mapping_from_spec(spec, registered).to_json())

``registered``: the mappings of the sources already onboarded, by name. A `via` into another source
takes the normalisation rule of the key it matches from that source's registration, so both sides of
the lookup compare values alike; a via the registrations cannot satisfy is refused, naming the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.exceptions import SpecError
from connectors.spec import SourceSpec, TableSpec
from scv.contracts.registration import ContactRule, LookupKey, SourceMapping, TableMapping

__all__ = ["mapping_from_spec", "via_problems"]


def _lookup_keys(table: TableSpec) -> tuple[LookupKey, ...]:
    return tuple(LookupKey(column, column, tuple(steps)) for column, steps in sorted(table.keys.items()))


def _via_rule(
    spec: SourceSpec, name: str, table: TableSpec, registered: Mapping[str, SourceMapping]
) -> tuple[str, ...]:
    """The normalisation rule of the key a via matches (empty for a same-source primary-key via)."""
    via = table.via
    assert via is not None
    if via.match is None:
        return ()
    if via.source in (None, spec.name):
        return tuple(spec.tables[via.table].keys[via.match])
    target = registered.get(via.source or "")
    where = f"tables.{name}.customer_key"
    if target is None:
        raise SpecError(
            f"{where}.via: source {via.source} is not onboarded; onboard it first (`scv sources add`), "
            f"declaring keys: {{{via.match}: [...]}} on {via.table}"
        )
    target_table = target.tables.get(via.table)
    if target_table is None:
        raise SpecError(f"{where}.via: source {via.source} captures no table {via.table}")
    for key in target_table.keys:
        if key.name == via.match:
            return key.normalize
    raise SpecError(
        f"{where}.match: {via.via} declares no lookup key {via.match!r}; add keys: {{{via.match}: [...]}} "
        f"under {via.table} in {via.source}'s spec and re-run `scv sources add` for it"
    )


def via_problems(spec: SourceSpec, registered: Mapping[str, SourceMapping], origin: str) -> list[str]:
    """Every via the registered sources cannot satisfy, as ``origin: message`` lines."""
    problems = []
    for name, table in spec.tables.items():
        if table.via is not None:
            try:
                _via_rule(spec, name, table, registered)
            except SpecError as exc:
                problems.append(f"{origin}: {exc}")
    return problems


def mapping_from_spec(
    spec: SourceSpec, registered: Mapping[str, SourceMapping] | None = None
) -> SourceMapping:
    registered = registered or {}
    tables = []
    for name, table in spec.tables.items():
        via = table.via
        contact = table.contact
        tables.append(
            TableMapping(
                source=spec.name,
                table=name,
                kind=table.kind,
                customer_key=None if via else table.key_column,
                customer_key_normalize=tuple(table.key_normalize),
                via_table=via.table if via else None,
                via_column=via.column if via else None,
                via_source=via.source if via and via.source != spec.name else None,
                via_key=via.match if via else None,
                via_normalize=_via_rule(spec, name, table, registered) if via else (),
                entity_id=tuple(table.entity_id) if table.entity_id else None,
                null_customer_key=table.null_customer_key or "dead_letter",
                keys=_lookup_keys(table),
                merge_into=table.merge_into,
                on_delete=table.on_delete or spec.on_delete,
                contact=None
                if contact is None
                else ContactRule(contact.value, contact.primary, contact.updated, tuple(contact.normalize)),
                profile=tuple(sorted(table.profile.items())),
                include_columns=tuple(table.include_columns) if table.include_columns is not None else None,
                exclude_columns=tuple(table.exclude_columns),
                masked_columns=tuple(sorted({*table.hash_columns, *table.mask_columns})),
            )
        )
    return SourceMapping.build(spec.name, spec.names.topic_prefix, tables, spec.priority)
