"""What this replicator holds back, and why: sources paused by a poison storm, partitions stopped by an
offset gap. The store's ``consumption_holds`` table is the truth shared by every process of the group
(and read by `scv sources status`); this module keeps the consumer's paused partitions in step with it.

    holds = Holds(consumer, HoldStore(session, ks), catalog)
    holds.pause_source("crm", "120 records dead-lettered in 60 s; last: ...")
    holds.stop_partition("crm.public.customers", 3, "records 120..499 were deleted by retention ...")
    holds.refresh()            # every registrations poll: lift what operators lifted, apply others'
    holds.assigned(partitions) # after a rebalance: keep held partitions paused

Rules:
1. a hold is written to the store before the partitions are paused, so a restart or another process
   pauses them too;
2. a paused source's records that were already fetched are not applied, parked or committed: the
   caller seeks its partitions back to the first of them, so they are read again once resumed;
3. `scv sources resume NAME` deletes the source's poison-storm hold; ``refresh`` then resumes its
   partitions where they stopped;
4. `scv sources resnapshot NAME` turns the source's offset-gap holds into ``offset_gap_recovered``
   ones; ``refresh`` (or the assignment, in whichever process gets the partition) restarts the
   partition from its earliest record — the resnapshot re-reads what the gap lost — and the row is
   deleted once an offset past the gap is committed, so a restart in between does not stop it again;
5. a store outage while polling keeps the current state; it is not a reason to resume anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from consumer.catalog import MappingCatalog
from consumer.checkpoint import Partition
from consumer.metrics import OFFSET_GAPS, PARTITION_STOPPED, SOURCE_PAUSED
from store.exceptions import StoreUnavailable
from store.holds import Hold, HoldStore

__all__ = ["OFFSET_GAP", "OFFSET_GAP_RECOVERED", "POISON_STORM", "Holds"]

log = structlog.get_logger(__name__)

POISON_STORM = "poison_storm"
OFFSET_GAP = "offset_gap"
OFFSET_GAP_RECOVERED = "offset_gap_recovered"


class Holds:
    def __init__(
        self,
        consumer: Consumer,
        store: HoldStore,
        catalog: MappingCatalog,
        on_source_resumed: Callable[[str], None] = lambda _source: None,
    ) -> None:
        self._on_source_resumed = on_source_resumed
        self._consumer = consumer
        self._store = store
        self._catalog = catalog
        self._paused_sources: set[str] = set()
        self._stopped: set[Partition] = set()
        self._assigned: set[Partition] = set()
        # Restarted from their earliest record after a gap; partition -> its source.
        self._recovering: dict[Partition, str] = {}

    # -- questions of the loop ----------------------------------------------------------------------

    def source_paused(self, source: str) -> bool:
        return source in self._paused_sources

    def partition_stopped(self, partition: Partition) -> bool:
        return partition in self._stopped

    @property
    def paused_sources(self) -> frozenset[str]:
        return frozenset(self._paused_sources)

    # -- holds set by this process ------------------------------------------------------------------

    def pause_source(self, source: str, detail: str) -> None:
        self._store.put(Hold(source, POISON_STORM, detail=detail))
        self._paused_sources.add(source)
        SOURCE_PAUSED.labels(source=source, reason=POISON_STORM).set(1)
        log.error(
            "source_paused",
            source=source,
            reason=POISON_STORM,
            detail=detail,
            fix=f"find the cause in `scv dlq list --source {source}`, fix it, then `scv sources resume "
            f"{source}` (and `scv dlq replay --source {source}` for the records parked meanwhile)",
        )
        self._pause(p for p in self._assigned if self._source_of(p[0]) == source)

    def stop_partition(self, topic: str, partition: int, source: str, detail: str) -> None:
        key = (topic, partition)
        if key in self._stopped:
            return
        self._store.put(Hold(source, OFFSET_GAP, topic, partition, detail=detail))
        self._stopped.add(key)
        OFFSET_GAPS.labels(topic=topic).inc()
        PARTITION_STOPPED.labels(topic=topic, partition=str(partition), reason=OFFSET_GAP).set(1)
        log.error("partition_stopped", topic=topic, partition=partition, reason=OFFSET_GAP, error=detail)
        self._pause([key])

    # -- the group's holds --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Apply the store's holds: pause what others held, resume what operators lifted."""
        try:
            holds = self._store.of_sources(self._catalog.sources)
        except StoreUnavailable as exc:
            log.warning("holds_unavailable", error=str(exc))
            return
        sources = {h.source for h in holds if h.reason == POISON_STORM}
        stopped = {(h.topic, h.partition) for h in holds if h.reason == OFFSET_GAP}
        recovered = {(h.topic, h.partition): h.source for h in holds if h.reason == OFFSET_GAP_RECOVERED}
        for source in sources - self._paused_sources:
            self._paused_sources.add(source)
            SOURCE_PAUSED.labels(source=source, reason=POISON_STORM).set(1)
            log.warning("source_paused_by_group", source=source, reason=POISON_STORM)
            self._pause(p for p in self._assigned if self._source_of(p[0]) == source)
        for source in self._paused_sources - sources:
            self._paused_sources.discard(source)
            SOURCE_PAUSED.labels(source=source, reason=POISON_STORM).set(0)
            log.info("source_resumed", source=source)
            self._on_source_resumed(source)
            self._resume(p for p in self._assigned if self._source_of(p[0]) == source)
        newly_stopped = (stopped - self._stopped) & self._assigned
        for key in newly_stopped:
            self._stopped.add(key)
            PARTITION_STOPPED.labels(topic=key[0], partition=str(key[1]), reason=OFFSET_GAP).set(1)
        self._pause(newly_stopped)
        for key in self._stopped - stopped:
            self._stopped.discard(key)
            PARTITION_STOPPED.labels(topic=key[0], partition=str(key[1]), reason=OFFSET_GAP).set(0)
            if key in recovered and key in self._assigned:
                log.info("partition_restarted", topic=key[0], partition=key[1], at="earliest record")
                self._recovering[key] = recovered[key]
                self._restart_from_earliest(key)

    def recovered_partitions(self, partitions: Iterable[Partition]) -> set[Partition]:
        """Of ``partitions``, those whose offset gap an operator recovered (rule 4); they restart from
        their earliest record instead of stopping."""
        wanted = set(partitions)
        sources = {s for t, _p in wanted if (s := self._source_of(t)) is not None}
        try:
            holds = self._store.of_sources(sources)
        except StoreUnavailable:
            return set()
        found = {
            (h.topic, h.partition): h.source
            for h in holds
            if h.reason == OFFSET_GAP_RECOVERED and (h.topic, h.partition) in wanted
        }
        self._recovering.update(found)
        return set(found)

    def committed(self, partitions: Iterable[Partition]) -> None:
        """Offsets past a recovered gap were committed: forget the recovery (rule 4)."""
        for key in [p for p in partitions if p in self._recovering]:
            source = self._recovering.pop(key)
            try:
                self._store.delete(source, OFFSET_GAP_RECOVERED, key[0], key[1])
            except StoreUnavailable:
                self._recovering[key] = source  # the next commit tries again

    def assigned(self, partitions: Iterable[Partition]) -> None:
        """After an assignment: keep the group's held partitions paused."""
        added = set(partitions)
        self._assigned |= added
        self._pause(p for p in added if p in self._stopped or self._source_of(p[0]) in self._paused_sources)

    def revoked(self, partitions: Iterable[Partition]) -> None:
        for key in partitions:
            self._assigned.discard(key)
            if key in self._stopped:
                self._stopped.discard(key)
                PARTITION_STOPPED.labels(topic=key[0], partition=str(key[1]), reason=OFFSET_GAP).set(0)

    def rewind(self, first_unapplied: dict[Partition, int]) -> None:
        """Rule 2: read these partitions again from these offsets once they are resumed."""
        for key, offset in first_unapplied.items():
            self._seek(key, offset)

    # -- the consumer -------------------------------------------------------------------------------

    def _source_of(self, topic: str) -> str | None:
        table = self._catalog.table_for(topic)
        return table.source if table is not None else None

    def _pause(self, partitions: Iterable[Partition]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self._consumer.pause(tps)

    def _resume(self, partitions: Iterable[Partition]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self._consumer.resume(tps)

    def _restart_from_earliest(self, key: Partition) -> None:
        # Assigned again rather than sought: a partition whose offset fell out of the log is in an
        # error state where librdkafka refuses a seek ("Erroneous state"); a fresh assignment starts
        # clean, unpaused.
        try:
            self._consumer.incremental_unassign([TopicPartition(key[0], key[1])])
            self._consumer.incremental_assign([TopicPartition(key[0], key[1], OFFSET_BEGINNING)])
            # The application's pause outlives the assignment in librdkafka: lift it explicitly.
            self._consumer.resume([TopicPartition(key[0], key[1])])
        except KafkaException as exc:
            log.warning("partition_restart_failed", topic=key[0], partition=key[1], error=str(exc))

    def _seek(self, key: Partition, offset: int) -> None:
        try:
            self._consumer.seek(TopicPartition(key[0], key[1], offset))
        except KafkaException as exc:
            # Not assigned any more: its next owner starts from the committed offset anyway.
            log.warning("seek_failed", topic=key[0], partition=key[1], offset=offset, error=str(exc))
