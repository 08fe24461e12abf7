"""Locate one record: its bytes -> a decoded change event placed in a customer's partition (pure).

    located = locate(table, key_bytes, value_bytes, decode)   # None for a tombstone

``decode`` turns Confluent wire-format bytes into a record (consumer/wire.py's ``AvroDecoder.decode``
in production, a plain function in tests). A record that can never be applied raises a
``PoisonRecord`` naming why (no registered table, undecodable, not a Debezium envelope, unplaceable);
the caller parks it in the dead-letter topic. A registry outage raises ``TransientFailure`` from
``decode``, which the caller retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consumer.envelope import to_change_event
from consumer.exceptions import PlacementError
from consumer.mapping import place
from consumer.planner import Located
from scv.contracts.registration import TableMapping

__all__ = ["Decode", "locate"]

Decode = Callable[[bytes], dict[str, Any]]


def locate(
    topic: str, table: TableMapping | None, key: bytes | None, value: bytes | None, decode: Decode
) -> Located | None:
    if table is None:
        raise PlacementError(f"topic {topic} belongs to no registered source table")
    if value is None:
        # Debezium's tombstone after a delete: it lets Kafka compact the key away; the delete event
        # before it already removed the row.
        return None
    event = to_change_event(table.source, decode(key) if key else None, decode(value))
    placement = None if event.op == "t" else place(event, table)
    return Located(event, table, placement)
