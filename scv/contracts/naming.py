"""The naming rule of a source: every name its pieces carry derives from the source's name.

    names = SourceNames("crm")
    names.connector            # 'scv-crm'      (Kafka Connect)
    names.slot                 # 'scv_crm'      (PostgreSQL replication slot; also the publication)
    names.topic("public.customers")   # 'crm.public.customers'
    names.heartbeat_topic      # '__debezium-heartbeat.crm'

Debezium's convention: one logical name gives the topic prefix, the slot and the publication, so an
operator who knows a source's name can guess every other name. The connector is prefixed ``scv-`` so
the sources this service owns stand apart from other connectors on a shared Connect cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["CONNECTOR_PREFIX", "SOURCE_NAME", "SourceNames", "is_source_name"]

CONNECTOR_PREFIX: Final = "scv-"
# Lower snake case, starting with a letter: valid unquoted as a PostgreSQL slot and publication name,
# as a Kafka topic prefix and as an Avro namespace part. 41 characters keep the slot name (scv_ + name)
# well under PostgreSQL's 63-byte identifier limit.
SOURCE_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# Slots and publications: an underscore, as unquoted PostgreSQL identifiers want.
_SLOT_PREFIX: Final = "scv_"
# Debezium's default topic.heartbeat.prefix.
_HEARTBEAT_PREFIX: Final = "__debezium-heartbeat"


def is_source_name(name: str) -> bool:
    return bool(SOURCE_NAME.match(name))


@dataclass(frozen=True, slots=True)
class SourceNames:
    source: str

    def __post_init__(self) -> None:
        if not is_source_name(self.source):
            raise ValueError(
                f"{self.source!r} is not a source name: lower_snake_case, starting with a letter, at most "
                f"41 characters (it becomes the topic prefix, the slot and the publication name)"
            )

    @classmethod
    def of_connector(cls, connector: str) -> SourceNames | None:
        """The source a connector belongs to, or None for a connector this service does not own."""
        name = connector.removeprefix(CONNECTOR_PREFIX)
        return cls(name) if connector.startswith(CONNECTOR_PREFIX) and is_source_name(name) else None

    @classmethod
    def of_slot(cls, slot: str) -> SourceNames | None:
        """The source a replication slot belongs to, or None for a slot this service does not own."""
        name = slot.removeprefix(_SLOT_PREFIX)
        return cls(name) if slot.startswith(_SLOT_PREFIX) and is_source_name(name) else None

    @property
    def connector(self) -> str:
        return f"{CONNECTOR_PREFIX}{self.source}"

    @property
    def slot(self) -> str:
        return f"{_SLOT_PREFIX}{self.source}"

    @property
    def publication(self) -> str:
        return f"{_SLOT_PREFIX}{self.source}"

    @property
    def topic_prefix(self) -> str:
        return self.source

    def topic(self, table: str) -> str:
        """The change topic of ``table`` (``schema.table``)."""
        return f"{self.topic_prefix}.{table}"

    def subject(self, table: str, role: str) -> str:
        """The registry subject of a table's record keys (``role="key"``) or values (TopicIdStrategy)."""
        return f"{self.topic(table)}-{role}"

    @property
    def heartbeat_topic(self) -> str:
        return f"{_HEARTBEAT_PREFIX}.{self.topic_prefix}"

    def owns_topic(self, topic: str) -> bool:
        """A change topic of this source, or its heartbeat topic."""
        return topic.startswith(f"{self.topic_prefix}.") or topic == self.heartbeat_topic

    @property
    def secret_file(self) -> str:
        """The file name of the source's CDC password in Kafka Connect's secrets folder."""
        return f"{self.source}.properties"

    @property
    def application_name(self) -> str:
        """``application_name`` of scv's own connections to the source database (visible to DBAs)."""
        return f"scv-sources-{self.source}"
