"""Place a change in the view: which customer, which kind, which entity id.

    placement = place(event, mapping.tables["public.cards"])   # mapping: scv/contracts/registration.py

The mapping travels with a source's registration (store table ``source_registrations``), not as a
file on the replicator's host; ``connectors/`` renders it from the DBA's spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from consumer.envelope import ChangeEvent
from consumer.exceptions import PlacementError
from scv.contracts.keys import InvalidKey, normalize
from scv.contracts.registration import TableMapping
from store.mutations import EntityRef, KeyRef

__all__ = [
    "Placement",
    "entity_id_of",
    "is_waiting_room",
    "orphan_customer_id",
    "place",
]


def entity_id_of(values: list[Any]) -> str:
    """The entity id of a row from its id column values: ``42``, or ``42/marketing`` for composite
    keys (each part percent-encoded so a ``/`` inside a value cannot be confused with the separator)."""
    if len(values) == 1:
        return str(values[0])
    return "/".join(quote(str(value), safe="") for value in values)


def orphan_customer_id(parent: EntityRef | KeyRef) -> str:
    """The partition that holds children whose parent has not been seen yet (topics are consumed in
    parallel, so a card can arrive before its account, an interaction keyed by fiscal code before
    the CRM customer holding that code). The parent's arrival moves them out."""
    if isinstance(parent, KeyRef):
        return f"~parked/{parent.source}/{parent.table}/{parent.key}/{parent.value}"
    return f"~orphans/{parent.source}/{parent.table}/{parent.entity_id}"


def is_waiting_room(customer_id: str) -> bool:
    """A partition of entities whose customer is not known yet (never a real customer id: ids that
    start with ``~`` are refused by placement)."""
    return customer_id.startswith("~")


@dataclass(frozen=True, slots=True)
class Placement:
    ref: EntityRef
    # Direct key: the customer (normalised); via: None (resolved through `parent` by the planner).
    customer_id: str | None
    parent: EntityRef | KeyRef | None
    # True when the customer key (or via column) is NULL and the mapping says `skip`.
    outside_view: bool = False
    # The row's lookup key values (name, normalised value); a NULL value is absent. ``None``: the
    # table declares no keys, or the values were not in the image (unchanged TOAST): keep the old ones.
    keys: tuple[tuple[str, str], ...] | None = None
    # The table declares merge_into: the survivor this row's customer was merged into (None: not
    # merged). ``merges`` False: the table declares no merges.
    merges: bool = False
    merged_into: str | None = None


def _row_for_ids(event: ChangeEvent) -> dict[str, Any]:
    # Deletes carry the key and possibly a key-only before-image; upserts the full after-image.
    row: dict[str, Any] = {}
    if event.before:
        row.update(event.before)
    if event.key:
        row.update(event.key)
    if event.after:
        row.update(event.after)
    return row


def place(event: ChangeEvent, table: TableMapping) -> Placement:
    row = _row_for_ids(event)
    columns = list(table.entity_id) if table.entity_id else list((event.key or {}).keys())
    if not columns:
        raise PlacementError(
            f"{table.source}/{table.table}: the event has no key and the mapping declares no entity_id "
            f"columns; give the table a primary key or set entity_id in the source spec"
        )
    missing = [c for c in columns if c not in row or row[c] is None]
    if missing:
        raise PlacementError(
            f"{table.source}/{table.table}: entity id column(s) {missing} absent or NULL in the event; "
            f"fix entity_id in the source spec"
        )
    ref = EntityRef(table.source, table.table, entity_id_of([row[c] for c in columns]))
    if event.op == "d":
        return Placement(ref, None, None)
    after = event.after or {}
    key_column = table.via_column if table.is_via else table.customer_key
    assert key_column is not None
    if key_column not in after:
        if key_column in event.unavailable:
            raise PlacementError(f"{table.table}.{key_column} is an unavailable (TOAST) value")
        raise PlacementError(
            f"{table.source}/{table.table}: customer key column {key_column!r} is not in the row; "
            f"was it excluded or dropped? fix customer_key in the source spec"
        )
    value = after[key_column]
    if value is None:
        if table.null_customer_key == "skip":
            return Placement(ref, None, None, outside_view=True)
        raise PlacementError(
            f"{table.source}/{table.table} row {ref.entity_id}: customer key {key_column} is NULL; "
            f"declare null_customer_key: skip in the source spec if such rows are outside the view"
        )
    keys = _lookup_keys(event, table, ref)
    if table.is_via:
        assert table.via_table is not None
        if table.via_key is None:
            parent: EntityRef | KeyRef = EntityRef(table.source, table.via_table, entity_id_of([value]))
        else:
            parent = KeyRef(
                table.via_source_name,
                table.via_table,
                table.via_key,
                _normalized(value, table.via_normalize, table, ref, key_column),
            )
        return Placement(ref, None, parent, keys=keys)
    customer = _normalized(value, table.customer_key_normalize, table, ref, key_column)
    if customer.startswith("~"):
        raise PlacementError(
            f"{table.source}/{table.table} row {ref.entity_id}: customer id {customer!r} starts with '~', "
            f"which scv reserves for entities waiting for their customer; normalise the key (e.g. trim)"
        )
    if table.merge_into is None:
        return Placement(ref, customer, None, keys=keys)
    merged = after.get(table.merge_into)
    survivor = (
        None
        if merged is None
        else _normalized(merged, table.customer_key_normalize, table, ref, table.merge_into)
    )
    return Placement(ref, customer, None, keys=keys, merges=True, merged_into=survivor)


def _normalized(value: Any, steps: tuple[str, ...], table: TableMapping, ref: EntityRef, column: str) -> str:
    try:
        return normalize(value, steps)
    except InvalidKey as exc:
        raise PlacementError(
            f"{table.source}/{table.table} row {ref.entity_id}: {column}: {exc}; fix the row at the source "
            f"or the key's normalize rule in the spec"
        ) from exc


def _lookup_keys(
    event: ChangeEvent, table: TableMapping, ref: EntityRef
) -> tuple[tuple[str, str], ...] | None:
    if not table.keys or any(key.column in event.unavailable for key in table.keys):
        return None
    after = event.after or {}
    values = []
    for key in table.keys:
        value = after.get(key.column)
        if value is not None:
            values.append((key.name, _normalized(value, key.normalize, table, ref, key.column)))
    return tuple(sorted(values))
