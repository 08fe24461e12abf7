"""The store's limits on keys, checked before a write is sent, so a write that would be refused is
refused whole — never half applied.

    refusal(PutRow(RowKey("", ...), ...))   # ("empty_key", "customer_view: Key may not be empty ...")

Cassandra and ScyllaDB refuse an empty partition key ("Key may not be empty") and keys longer than
65,535 bytes ("Key length of 70000 is longer than maximum of 65535"), the partition key and the
clustering columns each counted whole (measured on Cassandra 5 with the replicator's tables). Sent to
the store, such a write fails *after* the other writes of its change succeeded: a change whose view row
was refused left an index entry naming a partition that cannot exist, and every later change of the
entity then tried to delete from it and was refused too. Checked here, the whole change is refused
before anything is written (store/writer.py), and the replicator parks it.
"""

from __future__ import annotations

from typing import Final

from store.mutations import DeleteIndex, DeleteRow, LinkChild, Mutation, PutIndex, PutRow, UnlinkChild

__all__ = ["MAX_KEY_BYTES", "refusal"]

MAX_KEY_BYTES: Final = 65_535


def _size(*parts: str) -> int:
    return sum(len(part.encode("utf-8")) for part in parts)


def _composite(*parts: str) -> int:
    # A multi-column partition key is serialised as (2-byte length, bytes, end-of-component byte) each.
    return sum(len(part.encode("utf-8")) + 3 for part in parts)


def _check(table: str, partition_bytes: int, clustering_bytes: int, what: str) -> tuple[str, str] | None:
    if partition_bytes == 0:
        return ("empty_key", f"{table}: Key may not be empty ({what})")
    for kind, size in (("partition", partition_bytes), ("clustering", clustering_bytes)):
        if size > MAX_KEY_BYTES:
            message = f"Key length of {size} is longer than maximum of {MAX_KEY_BYTES}"
            return ("key_too_large", f"{table}: {message} ({kind} key; {what})")
    return None


def refusal(mutation: Mutation) -> tuple[str, str] | None:
    """(reason, message) when the store would refuse ``mutation`` whatever its state, else None."""
    match mutation:
        case PutRow(key=key) | DeleteRow(key=key):
            return _check(
                "customer_view",
                _size(key.customer_id),
                _size(key.kind, key.source, key.table, key.entity_id),
                f"customer {key.customer_id[:40]!r}, entity {key.table}/{key.entity_id[:40]}",
            )
        case PutIndex(entry=entry):
            ref = entry.ref
            return _check(
                "entity_index",
                _composite(ref.source, ref.table) + 7,
                _size(ref.entity_id),
                f"entity {ref.table}/{ref.entity_id[:40]}",
            )
        case DeleteIndex(ref=ref):
            return _check(
                "entity_index",
                _composite(ref.source, ref.table) + 7,
                _size(ref.entity_id),
                f"entity {ref.table}/{ref.entity_id[:40]}",
            )
        case LinkChild(parent=parent, child=child) | UnlinkChild(parent=parent, child=child):
            return _check(
                "entity_children",
                _composite(parent.source, parent.table, parent.entity_id),
                _size(child.table, child.entity_id),
                f"parent {parent.table}/{parent.entity_id[:40]}",
            )
    return None
