"""Questions about the Kafka cluster, asked from outside any consumer group: the one Kafka admin room.

    with KafkaAdmin("127.0.0.1:9092") as kafka:
        kafka.end_offsets(["crm.public.customers"])        # {'crm.public.customers': 1200}
        kafka.group_lag("scv-replicator", topics)          # records the group has not committed
        kafka.ensure_topic("scv.dead-letter", partitions=6, replication_factor=1)
        kafka.consumer_groups()                            # [GroupInfo('scv-replicator', members=...)]
        kafka.group_offsets("scv-replicator")              # every partition the group committed

Watermarks and committed offsets come from the admin API in one batched request per question (not one
round trip per partition). Nothing here joins a consumer group or commits: asking must never create
consumer state or move a group's position. A topic that does not exist holds no records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

__all__ = ["GroupInfo", "GroupMember", "KafkaAdmin", "KafkaUnavailable", "Partition"]

Partition = tuple[str, int]

log = structlog.get_logger(__name__)

_TIMEOUT_S = 10.0


class KafkaUnavailable(Exception):
    """The cluster did not answer in time (or refused the request); the message names the question."""


@dataclass(frozen=True)
class GroupMember:
    client_id: str
    # The member's address as the broker saw its connection (the container's or host's IP).
    host: str


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    simple: bool
    members: tuple[GroupMember, ...]


class KafkaAdmin:
    def __init__(self, bootstrap_servers: str, timeout_s: float = _TIMEOUT_S) -> None:
        self._bootstrap = bootstrap_servers
        self._timeout_s = timeout_s
        # log_level 0: librdkafka logs every refused connection, which callers that poll expect.
        self._admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})

    def __enter__(self) -> KafkaAdmin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        # AdminClient holds no resource that needs an explicit close in confluent-kafka.
        return None

    def _answer(self, future: Any, what: str) -> Any:
        """The future's result; no answer within the timeout is ``KafkaUnavailable`` (naming
        ``what``), like a refusal: a broker that is restarting answers neither. ``KafkaException``
        passes through, for callers that read its code."""
        try:
            return future.result(self._timeout_s)
        except TimeoutError as exc:
            raise KafkaUnavailable(
                f"{what}: Kafka at {self._bootstrap} did not answer within {self._timeout_s:g} s"
            ) from exc

    # -- topics ----------------------------------------------------------------------------------

    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, list[int]]:
        """Partition numbers of each existing topic (of ``topics``, or all)."""
        try:
            metadata = self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailable(f"Kafka at {self._bootstrap} did not list its topics: {exc}") from exc
        wanted = None if topics is None else set(topics)
        return {
            name: sorted(meta.partitions)
            for name, meta in metadata.topics.items()
            if (wanted is None or name in wanted) and meta.error is None
        }

    def list_topics(self) -> list[str]:
        return sorted(self.partitions())

    def ensure_topic(
        self,
        name: str,
        *,
        partitions: int,
        replication_factor: int,
        config: Mapping[str, str] | None = None,
    ) -> bool:
        """Create ``name`` unless it exists; True when this call created it."""
        topic = NewTopic(
            name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config or {})
        )
        future = self._admin.create_topics([topic], request_timeout=self._timeout_s)[name]
        try:
            self._answer(future, f"creating topic {name}")
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise KafkaUnavailable(f"cannot create topic {name}: {exc}") from exc
        return True

    def set_topic_config(self, name: str, config: Mapping[str, str]) -> None:
        """Set these configs of an existing topic (others are left as they are)."""
        resource = ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in config.items()
            ],
        )
        future = self._admin.incremental_alter_configs([resource], request_timeout=self._timeout_s)[resource]
        try:
            self._answer(future, f"setting the config of topic {name}")
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot set {dict(config)} on topic {name}: {exc}") from exc

    def delete_topics(self, topics: Iterable[str]) -> None:
        names = list(topics)
        if not names:
            return
        futures = self._admin.delete_topics(names, operation_timeout=self._timeout_s)
        for name, future in futures.items():
            try:
                self._answer(future, f"deleting topic {name}")
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaUnavailable(f"cannot delete topic {name}: {exc}") from exc

    # -- offsets ---------------------------------------------------------------------------------

    def _list_offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[Partition, int]:
        if not partitions:
            return {}
        futures = self._admin.list_offsets({tp: spec for tp in partitions}, request_timeout=self._timeout_s)
        out: dict[Partition, int] = {}
        for tp, future in futures.items():
            try:
                out[(tp.topic, tp.partition)] = max(int(self._answer(future, "listing offsets").offset), 0)
            except KafkaException:
                # A topic Connect has just created may have no leader yet: it counts as empty, a lower
                # bound the next question corrects.
                out[(tp.topic, tp.partition)] = 0
        return out

    def watermarks(self, topics: Iterable[str]) -> dict[Partition, tuple[int, int]]:
        """(low, high) watermark of every partition of every existing topic of ``topics``."""
        partitions = [
            TopicPartition(topic, partition)
            for topic, numbers in self.partitions(topics).items()
            for partition in numbers
        ]
        lows = self._list_offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        highs = self._list_offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {key: (lows[key], highs[key]) for key in highs}

    def end_offsets(self, topics: Iterable[str]) -> dict[str, int]:
        """Records ever written per topic (the sum of its high watermarks); 0 for a missing topic."""
        names = list(topics)
        totals = dict.fromkeys(names, 0)
        for (topic, _partition), (_low, high) in self.watermarks(names).items():
            totals[topic] += high
        return totals

    def committed(self, group: str, topics: Iterable[str]) -> dict[Partition, int | None]:
        """The group's committed offset of every partition of ``topics`` (None: never committed)."""
        partitions = [
            TopicPartition(topic, partition)
            for topic, numbers in self.partitions(topics).items()
            for partition in numbers
        ]
        if not partitions:
            return {}
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        future = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout_s)[group]
        try:
            result = self._answer(future, f"committed offsets of group {group}")
        except KafkaException as exc:
            raise KafkaUnavailable(f"committed offsets of group {group}: {exc}") from exc
        return {
            (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None
            for tp in result.topic_partitions or []
        }

    def group_lag(self, group: str, topics: Iterable[str]) -> int:
        """Records in ``topics`` that ``group`` has not committed yet (a missing topic holds none).

        A partition the group never committed counts from its low watermark: the replicator starts
        from the earliest offset.
        """
        names = list(topics)
        marks = self.watermarks(names)
        committed = self.committed(group, names)
        behind = 0
        for key, (low, high) in marks.items():
            position = committed.get(key)
            behind += max(0, high - (low if position is None else position))
        return behind

    def watermarks_of(self, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, int]]:
        """(low, high) watermark of each of ``partitions`` (all asked in two batched requests)."""
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        lows = self._list_offsets(wanted, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        highs = self._list_offsets(wanted, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {key: (lows[key], highs[key]) for key in highs}

    # -- consumer groups -------------------------------------------------------------------------

    def consumer_groups(self, only: Iterable[str] | None = None) -> list[GroupInfo]:
        """Every consumer group the cluster knows (or those of ``only``), with its members."""
        try:
            listing = self._answer(
                self._admin.list_consumer_groups(request_timeout=self._timeout_s), "listing consumer groups"
            )
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"Kafka at {self._bootstrap} did not list its consumer groups: {exc}"
            ) from exc
        self._refuse_unanswered(listing)
        wanted = None if only is None else set(only)
        simple = {
            g.group_id: bool(g.is_simple_consumer_group)
            for g in listing.valid
            if wanted is None or g.group_id in wanted
        }
        if not simple:
            return []
        futures = self._admin.describe_consumer_groups(list(simple), request_timeout=self._timeout_s)
        groups: list[GroupInfo] = []
        for group_id, future in futures.items():
            try:
                described = self._answer(future, f"describing consumer group {group_id}")
            except KafkaException as exc:
                # Mostly a group deleted between the listing and the describe: it has nothing to
                # report. Said all the same: any other error drops the group's lag from this round.
                log.warning("kafka.group_describe_failed", group=group_id, error=str(exc))
                continue
            members = tuple(
                GroupMember(client_id=str(m.client_id), host=str(m.host).lstrip("/"))
                for m in described.members
            )
            state = getattr(described.state, "name", str(described.state))
            groups.append(GroupInfo(group_id, state, simple[group_id], members))
        return sorted(groups, key=lambda g: g.group_id)

    def _refuse_unanswered(self, listing: Any) -> None:
        """An empty listing is "no groups" only if the cluster answered. Unreachable, librdkafka may
        complete it at once, empty (no broker known to ask) or with only errors; taken as "no
        groups", the exporter would drop every group's lag series during an outage."""
        if listing.valid:
            return
        if listing.errors:
            raise KafkaUnavailable(
                f"listing consumer groups: Kafka at {self._bootstrap} did not answer: {listing.errors[0]}"
            )
        self.partitions([])  # a metadata request: raises KafkaUnavailable when nothing answers

    def group_ids(self) -> list[str]:
        """The id of every consumer group the cluster knows (no describe: one request)."""
        try:
            listing = self._answer(
                self._admin.list_consumer_groups(request_timeout=self._timeout_s), "listing consumer groups"
            )
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"Kafka at {self._bootstrap} did not list its consumer groups: {exc}"
            ) from exc
        self._refuse_unanswered(listing)
        return sorted(str(g.group_id) for g in listing.valid)

    def delete_groups(self, groups: Iterable[str]) -> list[str]:
        """Delete these consumer groups (their committed offsets); returns those that could not be
        deleted because they still have members. A group that does not exist is already deleted."""
        names = list(groups)
        if not names:
            return []
        futures = self._admin.delete_consumer_groups(names, request_timeout=self._timeout_s)
        busy: list[str] = []
        for name, future in futures.items():
            try:
                self._answer(future, f"deleting consumer group {name}")
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError.NON_EMPTY_GROUP:
                    busy.append(name)
                elif code != KafkaError.GROUP_ID_NOT_FOUND:
                    raise KafkaUnavailable(f"cannot delete consumer group {name}: {exc}") from exc
        return sorted(busy)

    def group_offsets(self, group: str) -> dict[Partition, int]:
        """Every partition ``group`` has committed an offset for, with that offset."""
        request = [ConsumerGroupTopicPartitions(group)]
        future = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout_s)[group]
        try:
            result = self._answer(future, f"offsets of group {group}")
        except KafkaException as exc:
            raise KafkaUnavailable(f"committed offsets of group {group}: {exc}") from exc
        return {
            (tp.topic, tp.partition): int(tp.offset) for tp in result.topic_partitions or [] if tp.offset >= 0
        }

    # -- records ---------------------------------------------------------------------------------

    def record_times(self, offsets: Mapping[Partition, int]) -> dict[Partition, datetime]:
        """When the record at each given offset was written (its timestamp); a partition whose record
        is gone (retention) answers with the next one, and one that has none is left out."""
        assignment = [
            TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()
        ]
        if not assignment:
            return {}
        found: dict[Partition, datetime] = {}
        consumer = self._reader()
        try:
            consumer.assign(assignment)
            deadline = time.monotonic() + self._timeout_s
            while len(found) < len(assignment) and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                key = (str(message.topic()), int(message.partition() or 0))
                if key not in found:
                    found[key] = datetime.fromtimestamp(message.timestamp()[1] / 1000, UTC)
                    # Nothing more is needed from this partition: stop it fetching.
                    consumer.pause([TopicPartition(key[0], key[1])])
        finally:
            consumer.close()
        return found

    def last_record_time(self, topics: Iterable[str]) -> datetime | None:
        """The newest record timestamp across ``topics`` (reads the last record of each partition)."""
        assignment = [
            TopicPartition(topic, partition, high - 1)
            for (topic, partition), (low, high) in self.watermarks(topics).items()
            if high > low
        ]
        if not assignment:
            return None
        consumer = self._reader()
        try:
            consumer.assign(assignment)
            newest_ms, pending = 0, len(assignment)
            deadline = time.monotonic() + self._timeout_s
            while pending and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                pending -= 1
                newest_ms = max(newest_ms, message.timestamp()[1])
        finally:
            consumer.close()
        return datetime.fromtimestamp(newest_ms / 1000, UTC) if newest_ms else None

    def _reader(self) -> Consumer:
        # A throw-away group id that never commits: reading records must not create consumer state.
        config: dict[str, Any] = {
            "bootstrap.servers": self._bootstrap,
            "group.id": f"scv-admin-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
        return Consumer(config)
