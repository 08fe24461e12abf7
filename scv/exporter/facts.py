"""What the exporter learns in one round, as plain data: the exporter's gauges and `scv status` are
both built from these (scv/exporter/metrics.py, scv/exporter/status.py).

Every figure that could not be read is None, never 0: "unknown" and "nothing behind" are different
answers at 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CONNECTOR_STATES",
    "TASK_STATES",
    "GroupFacts",
    "PartitionLag",
    "Probe",
    "SlotFacts",
    "SourceFacts",
    "TaskFacts",
]

# Kafka Connect's states (AbstractStatus.State), plus MISSING for a connector whose status is absent.
CONNECTOR_STATES = ("RUNNING", "PAUSED", "STOPPED", "FAILED", "UNASSIGNED", "RESTARTING", "MISSING")
TASK_STATES = ("RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "RESTARTING")


@dataclass(frozen=True)
class TaskFacts:
    id: int
    state: str
    # The first line of the task's stack trace when FAILED: the exception and its message.
    error: str | None = None


@dataclass(frozen=True)
class SlotFacts:
    name: str
    exists: bool
    active: bool = False
    # pg_current_wal_lsn() - restart_lsn: WAL the server must keep for this slot (what fills its disk).
    retained_wal_bytes: int | None = None
    # pg_current_wal_lsn() - confirmed_flush_lsn: WAL written since the consumer last confirmed.
    confirmed_lag_bytes: int | None = None
    # Time since the server's WAL went past confirmed_flush_lsn (exporter only: needs history).
    confirmed_flush_age_s: float | None = None
    # pg_replication_slots.wal_status: reserved, extended, unreserved or lost.
    wal_status: str | None = None


@dataclass(frozen=True)
class SourceFacts:
    source: str
    connector: str
    connector_state: str
    connector_error: str | None
    tasks: tuple[TaskFacts, ...]
    # Change topics of the captured tables, and the heartbeat topic.
    topics: tuple[str, ...]
    heartbeat_topic: str
    database_up: bool | None
    database_error: str | None = None
    slot: SlotFacts | None = None
    heartbeat_age_s: float | None = None


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    earliest: int
    latest: int
    lag_seconds: float | None

    @property
    def lag(self) -> int:
        return max(0, self.latest - max(self.committed, self.earliest))


@dataclass(frozen=True)
class GroupFacts:
    group: str
    state: str
    simple: bool
    members: int
    partitions: tuple[PartitionLag, ...]
    # host:port of each member that advertises a replicator metrics port (scv/contracts/discovery.py).
    replicator_endpoints: tuple[str, ...] = field(default=())

    @property
    def max_lag(self) -> int:
        return max((p.lag for p in self.partitions), default=0)

    @property
    def max_lag_seconds(self) -> float:
        return max((p.lag_seconds or 0.0 for p in self.partitions), default=0.0)


@dataclass(frozen=True)
class Probe:
    dependency: str
    up: bool
    seconds: float
    error: str | None = None
