"""The "customer view changed" event: what the replicator announces after a batch, as plain data.

    event = ViewChanged("42", ("email",), source_ts, applied_ts, (Position("crm.public.emails", 0, 41),))
    record = event.to_record()            # the Avro record of registry_schemas/view_changed-value.avsc
    ViewChanged.from_record(record) == event

The schema lives in registry_schemas/ (data, reviewed like code); ``SCHEMA_FILE`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILE", "Position", "ViewChanged", "schema_text", "subject_of"]

SCHEMA_FILE = "view_changed-value.avsc"


def schema_text() -> str:
    """The Avro schema of the event's value (registry_schemas/view_changed-value.avsc, a sibling of
    the scv package in a checkout and in an installed wheel alike)."""
    return (Path(__file__).resolve().parents[2] / "registry_schemas" / SCHEMA_FILE).read_text()


def subject_of(topic: str) -> str:
    """The registry subject of the topic's values (TopicNameStrategy, as Debezium's topics)."""
    return f"{topic}-value"


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ViewChanged:
    customer_id: str
    sections: tuple[str, ...]
    source_ts: datetime  # aware, UTC
    applied_ts: datetime
    positions: tuple[Position, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "sections": list(self.sections),
            "source_ts": self.source_ts,
            "applied_ts": self.applied_ts,
            "positions": [
                {"topic": p.topic, "partition": p.partition, "offset": p.offset} for p in self.positions
            ],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ViewChanged:
        return cls(
            customer_id=record["customer_id"],
            sections=tuple(record["sections"]),
            source_ts=record["source_ts"],
            applied_ts=record["applied_ts"],
            positions=tuple(Position(p["topic"], p["partition"], p["offset"]) for p in record["positions"]),
        )
