"""Consumer group lag, in records and in seconds, computed from outside every consumer.

    lag = KafkaLag(admin, groups=r".*", lookup_table_size=120)
    groups, heartbeats = lag.read(heartbeat_topics, now=time.time())

One round asks the cluster four questions, each batched: the consumer groups with their members,
each group's committed offsets, the end offsets of every partition any group committed (plus the
sources' heartbeat topics), and, once per partition first seen behind, the timestamp of the record
the group is stuck at. Seconds behind come from each partition's ``OffsetTimeline``
(scv/exporter/timeline.py), so they keep growing while a replicator is stuck or dead: nothing here
waits for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from scv.contracts.discovery import metrics_port_of
from scv.exporter.facts import GroupFacts, PartitionLag
from scv.exporter.timeline import OffsetTimeline
from scv.kafka.admin import GroupInfo, KafkaAdmin, Partition

__all__ = ["HeartbeatAges", "KafkaLag", "replicator_endpoints"]


@dataclass(frozen=True)
class HeartbeatAges:
    """Seconds since the newest record of each heartbeat topic (absent: no heartbeat seen yet)."""

    ages: dict[str, float]


def replicator_endpoints(group: GroupInfo) -> tuple[str, ...]:
    """``host:port`` of the metrics endpoint of each member that is a replicator."""
    endpoints = []
    for member in group.members:
        port = metrics_port_of(member.client_id)
        if port is not None and member.host:
            host = f"[{member.host}]" if ":" in member.host else member.host
            endpoints.append(f"{host}:{port}")
    return tuple(sorted(set(endpoints)))


class KafkaLag:
    def __init__(self, admin: KafkaAdmin, groups: str, lookup_table_size: int) -> None:
        self._admin = admin
        self._groups = re.compile(groups)
        self._size = lookup_table_size
        self._timelines: dict[Partition, OffsetTimeline] = {}

    def read(self, heartbeat_topics: Iterable[str], now: float) -> tuple[list[GroupFacts], HeartbeatAges]:
        groups = [g for g in self._admin.consumer_groups() if self._groups.fullmatch(g.group_id)]
        committed = {g.group_id: self._admin.group_offsets(g.group_id) for g in groups}
        wanted = {p for offsets in committed.values() for p in offsets}
        marks = self._admin.watermarks_of(wanted)
        beats = list(heartbeat_topics)
        if beats:
            marks |= self._admin.watermarks(beats)
        self._observe(marks, now)
        self._seed(committed, marks, beats)
        facts = [self._group(g, committed[g.group_id], marks, now) for g in groups]
        return facts, self._heartbeat_ages(beats, marks, now)

    def _observe(self, marks: dict[Partition, tuple[int, int]], now: float) -> None:
        for partition, (_low, high) in marks.items():
            timeline = self._timelines.get(partition)
            if timeline is None:
                timeline = self._timelines[partition] = OffsetTimeline(self._size)
            timeline.observe(high, now)
        # Partitions no group or source refers to any more (topic deleted, group expired).
        for gone in set(self._timelines) - set(marks):
            del self._timelines[gone]

    def _seed(
        self,
        committed: dict[str, dict[Partition, int]],
        marks: dict[Partition, tuple[int, int]],
        heartbeat_topics: list[str],
    ) -> None:
        """A timeline seen for the first time knows one point: give it the true time of the oldest
        record a group waits for (and of each heartbeat topic's newest record)."""
        fresh = {p for p, t in self._timelines.items() if len(t) == 1}
        if not fresh:
            return
        wanted: dict[Partition, int] = {}
        for offsets in committed.values():
            for partition, offset in offsets.items():
                low, high = marks.get(partition, (0, 0))
                position = max(offset, low)
                if partition in fresh and position < high:
                    wanted[partition] = min(wanted.get(partition, position), position)
        for partition, (low, high) in marks.items():
            if partition in fresh and partition[0] in heartbeat_topics and high > low:
                wanted[partition] = high - 1
        for partition, written in self._admin.record_times(wanted).items():
            self._timelines[partition].seed(wanted[partition] + 1, written.timestamp())

    def _group(
        self,
        group: GroupInfo,
        committed: dict[Partition, int],
        marks: dict[Partition, tuple[int, int]],
        now: float,
    ) -> GroupFacts:
        partitions = []
        for (topic, number), offset in sorted(committed.items()):
            if (topic, number) not in marks:
                continue  # the topic was deleted: the group's offset for it means nothing now
            low, high = marks[(topic, number)]
            timeline = self._timelines[(topic, number)]
            partitions.append(
                PartitionLag(topic, number, offset, low, high, timeline.lag_seconds(max(offset, low), now))
            )
        return GroupFacts(
            group=group.group_id,
            state=group.state,
            simple=group.simple,
            members=len(group.members),
            partitions=tuple(partitions),
            replicator_endpoints=replicator_endpoints(group),
        )

    def _heartbeat_ages(
        self, topics: list[str], marks: dict[Partition, tuple[int, int]], now: float
    ) -> HeartbeatAges:
        ages: dict[str, float] = {}
        for (topic, _number), (low, high) in marks.items():
            if topic not in topics or high <= low:
                continue
            written = self._timelines[(topic, _number)].written_at(high - 1)
            if written is not None:
                age = max(0.0, now - written)
                ages[topic] = min(ages.get(topic, age), age)
        return HeartbeatAges(ages)
