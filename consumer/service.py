"""The replicator process: poll a batch, decode, apply, commit — at least once, never lossy.

    Replicator.from_settings(get_settings()).run()    # until SIGTERM/SIGINT

Commit protocol for every batch, in this order (the safety argument):
1. decode every record; a record that can never be applied — or whose decoding or placing raises
   anything unexpected — is parked in the dead-letter topic, a registry outage is retried (the record
   is not parked); records of a source held back (consumer/holds.py) are neither applied nor parked,
   and their partitions are rewound to the first of them;
2. write the batch's mutations to the store and wait for every acknowledgement (retried with
   backoff while the store is out); a change the store refuses for good, or whose planning raises, is
   isolated by bisection and parked, the rest applied (consumer/isolation.py);
3. produce one "customer view changed" event per customer the batch wrote (consumer/view_events.py),
   then flush the producers — dead letters and events — and wait for every acknowledgement (a failed
   dead-letter delivery is sent again, and blocks the commit until it succeeds:
   consumer/deadletter.py);
4. commit the offset after the last record of each partition that precedes anything held back —
   asynchronously, so the next batch does not wait for the broker; synchronously for partitions
   being revoked and at shutdown (consumer/checkpoint.py keeps that bookkeeping, with its own
   numbered rules).
A crash anywhere before 4, or a commit that fails, redelivers records; re-applying them is harmless
because every write carries the source change's timestamp. A commit is only ever sent after steps
2-3, so no committed offset covers a write that is not durable, nor a change not yet announced.
SIGTERM sets a flag checked between batches, so the batch in flight completes steps 1-4 before the
consumer leaves the group.

Where a partition starts is decided at assignment (consumer/offset_gaps.py): from the beginning for a
new group, from the committed offset otherwise, and not at all when retention deleted records the
group never consumed — that partition is stopped until `scv sources resnapshot` recovers it.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import structlog
from cassandra import InvalidRequest
from cassandra.cluster import Session
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.applier import Applier
from consumer.catalog import MappingCatalog
from consumer.checkpoint import Checkpoint, KafkaCommitter, Partition
from consumer.deadletter import DeadLetterQueue
from consumer.endpoints import serve_endpoints
from consumer.exceptions import ConsumerFenced, PoisonRecord, ReplicatorError, TransientFailure, Unexpected
from consumer.gc_pauses import tame_gc_pauses
from consumer.health import Health
from consumer.holds import Holds
from consumer.index_cache import IndexCache
from consumer.isolation import Isolator
from consumer.lag_gauges import LagGauges
from consumer.locate import locate
from consumer.metrics import BATCH_EVENTS, BATCH_PHASE, ENTITIES_PARKED, ERRORS, EVENTS_APPLIED
from consumer.observe import observe_applied, observe_consumed
from consumer.offset_gaps import gap_message, starting_point
from consumer.planner import Located
from consumer.poison_storm import PoisonStormGuard
from consumer.retry import Backoff, ShutdownRequested, retry_transient
from consumer.view_events import ViewEvents
from consumer.wire import ApicurioContent, AvroDecoder
from scv.config.settings import ConsumerSettings, KafkaSettings, RegistrySettings, Settings, StoreSettings
from scv.contracts.discovery import replicator_client_id
from scv.kafka.admin import KafkaAdmin, KafkaUnavailable
from store.exceptions import StoreRejected, StoreUnavailable
from store.holds import HoldStore
from store.index import EntityIndex
from store.intents import SettleIntents
from store.registrations import RegistrationStore
from store.session import connect
from store.truncations import TruncationLog
from store.writer import ViewWriter

__all__ = ["Replicator", "ShutdownRequested"]

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Parked records are kept a month: time to fix the cause and replay them (`scv dlq`).
_DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000


class Replicator:
    def __init__(
        self,
        config: ConsumerSettings,
        kafka: KafkaSettings,
        registry: RegistrySettings,
        store: StoreSettings,
        metrics_port: int | None = None,
    ) -> None:
        self._config = config
        self._kafka = kafka
        self._registry = registry
        self._store = store
        self._metrics_port = config.metrics_port if metrics_port is None else metrics_port
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s)
        self._stopping = False
        self._health = Health(config.live_after_s, config.ready_max_lag_s)
        self._registrations_at = 0.0
        self._redirects_at = 0.0
        self._parked_at = 0.0
        # Set by a rebalance or a registration change: the index cache must be rebuilt before the
        # next batch (consumer/index_cache.py says why).
        self._cache_stale = True
        # Set when the consumer reports a fatal error: it can never consume again (ConsumerFenced).
        self._fatal: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, metrics_port: int | None = None) -> Replicator:
        return cls(settings.consumer, settings.kafka, settings.registry, settings.store, metrics_port)

    # -- lifecycle -------------------------------------------------------------------------------

    def request_stop(self, *_args: object) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        if self._metrics_port:
            self._serve_metrics()
        tame_gc_pauses()
        try:
            cluster, session = self._retry(lambda: connect(self._store), "store_connect")
        except ShutdownRequested:
            log.warning("shutdown_before_store_connected")
            return
        try:
            self._open_store(session)
            self._isolator = Isolator(self._applier.apply, lambda action: self._retry(action, "store"))
            self._storm = PoisonStormGuard(
                self._config.poison_storm_dead_letters, self._config.poison_storm_window_s
            )
            self._retry(lambda: self._applier.load_redirects(sweep=False), "store")
            self._redirects_at = time.monotonic()
            self._decoder = AvroDecoder(
                SchemaRegistryClient({"url": self._registry.url}),
                fallback=ApicurioContent(self._registry.native_url) if self._registry.native_url else None,
            )
            self._retry(self._ensure_dead_letter_topic, "kafka")
            # The view events' producer; dead letters have their own (consumer/deadletter.py may
            # replace it after a fatal error, and it carries records up to the maximum size).
            producer = Producer(
                {
                    "bootstrap.servers": self._kafka.bootstrap_servers,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                }
            )
            self._dlq = DeadLetterQueue(self._dead_letter_producer, self._config.dead_letter_topic)
            self._retry(lambda: self._view_events.start(producer, self._kafka, self._registry.url), "kafka")
            self._consumer = Consumer(self._consumer_config())
            self._checkpoint = Checkpoint(KafkaCommitter(self._consumer))
            lag_admin = KafkaAdmin(self._kafka.bootstrap_servers)
            self._lag = LagGauges(
                self._consumer,
                self._checkpoint,
                lag_admin.watermarks_of,
                self._health,
            )
            self._lag.start(self._config.lag_report_s)
            self._holds = Holds(
                self._consumer,
                HoldStore(session, self._store.keyspace),
                self._catalog,
                on_source_resumed=self._storm.forget,
            )
            log.info("replicator_started", group=self._config.group_id, metrics_port=self._metrics_port)
            try:
                self._loop()
                self._checkpoint.commit_pending()
            finally:
                self._lag.stop()  # before close: it asks the consumer for its assignment
                self._consumer.close()
                producer.flush(10)
                self._dlq.close()
                log.info("replicator_stopped")
        except ShutdownRequested:
            # Stopped while starting, waiting out an outage (Kafka, the registry, the store):
            # nothing was consumed, nothing is committed.
            log.warning("shutdown_before_started")
        finally:
            cluster.shutdown()

    def _open_store(self, session: Session) -> None:
        """Prepare every statement the replicator runs; a table the store lacks is a schema behind
        this release, which only `scv store migrate` fixes (restarting would fail the same way)."""
        keyspace = self._store.keyspace
        try:
            self._catalog = MappingCatalog(RegistrationStore(session, keyspace))
            self._index = EntityIndex(session, keyspace, self._config.write_concurrency)
            self._view_events = ViewEvents(self._config.view_events_topic)
            self._applier = Applier(
                self._view_events.tap(
                    ViewWriter(
                        session, keyspace, self._config.write_concurrency, self._config.batch_partitions
                    )
                ),
                self._index,
                IndexCache(self._config.index_cache_entries),
                truncations=TruncationLog(session, keyspace),
                intents=SettleIntents(session, keyspace),
            )
        except InvalidRequest as exc:
            raise ReplicatorError(
                f"the store's schema in keyspace {keyspace} is behind this replicator ({exc}); "
                "run `scv store migrate`, then start the replicator again"
            ) from exc

    def _ensure_dead_letter_topic(self) -> None:
        # The dead-letter topic accepts what the source topics accept, plus its own headers.
        config = {
            "retention.ms": str(_DEAD_LETTER_RETENTION_MS),
            "max.message.bytes": str(self._kafka.max_message_bytes),
        }
        topic = self._config.dead_letter_topic
        with KafkaAdmin(self._kafka.bootstrap_servers) as admin:
            try:
                created = admin.ensure_topic(
                    topic,
                    partitions=self._kafka.topic_partitions,
                    replication_factor=self._kafka.replication_factor,
                    config=config,
                )
            except KafkaUnavailable as exc:
                # A broker restarting (or not up yet) when the process starts: waited out.
                raise TransientFailure(f"cannot create the dead-letter topic {topic}: {exc}") from exc
            if not created:
                try:
                    admin.set_topic_config(topic, {"max.message.bytes": config["max.message.bytes"]})
                except KafkaUnavailable as exc:
                    # Not fatal: a record the topic refuses as too large is still parked, without
                    # its value (consumer/deadletter.py); say how to fix the topic.
                    log.warning("dead_letter_topic_config", topic=topic, error=str(exc))

    def _dead_letter_producer(self) -> Producer:
        return Producer(
            {
                "bootstrap.servers": self._kafka.bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": self._kafka.max_message_bytes,
            }
        )

    def _serve_metrics(self) -> None:
        host, port = self._config.metrics_host, self._metrics_port
        try:
            serve_endpoints(host, port, self._health)
        except OSError as exc:
            raise ReplicatorError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}. Another replicator (or another "
                f"program) holds the port: stop it, or give this one its own port with "
                f"SCV_CONSUMER__METRICS_PORT (0 turns the endpoint off)"
            ) from exc

    def _consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self._kafka.bootstrap_servers,
            "group.id": self._config.group_id,
            # Carries the metrics port: how the exporter finds this process for Prometheus.
            "client.id": replicator_client_id(self._metrics_port),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # Never jump silently: where a partition starts is decided at assignment (_on_assign),
            # and an offset that falls out of the log while running stops the partition
            # (consumer/offset_gaps.py).
            "auto.offset.reset": "error",
            "partition.assignment.strategy": "cooperative-sticky",
            # New CDC topics (a table's first change) must be noticed in seconds, not 5 minutes.
            "topic.metadata.refresh.interval.ms": 5000,
            # A store outage pauses the loop in retries; keep the member in the group meanwhile.
            "max.poll.interval.ms": 600_000,
            "on_commit": self._on_commit,
            "error_cb": self._on_kafka_error,
        }
        if self._config.group_instance_id:
            config["group.instance.id"] = self._config.group_instance_id
        return config

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        subscribed = False
        while not self._stopping:
            if self._fatal is not None:
                raise ConsumerFenced(
                    f"the Kafka consumer hit a fatal error and cannot consume again: {self._fatal}"
                )
            self._health.progressed()
            now = time.monotonic()
            if now - self._registrations_at >= self._config.registrations_poll_s:
                self._registrations_at = now
                if self._refresh_registrations():
                    self._cache_stale = True
                    if self._catalog.topics:
                        self._consumer.subscribe(
                            [self._catalog.subscription_pattern()],
                            on_assign=self._on_assign,
                            on_revoke=self._on_revoke,
                            on_lost=self._on_lost,
                        )
                        subscribed = True
                        log.info("subscribed", topics=len(self._catalog.topics))
                    elif subscribed:
                        # The last source was removed: drop its topics too.
                        self._consumer.unsubscribe()
                        subscribed = False
                        log.info("unsubscribed", reason="no registered source")
                self._holds.refresh()
            if not subscribed:
                # Polled, not slept: the revoke that follows an unsubscribe (the last source removed)
                # is served by a poll, and until it runs the group still holds this member's
                # partitions (measured: ~45 s). Nothing is subscribed, so nothing is returned.
                self._consumer.consume(num_messages=1, timeout=min(0.5, self._config.registrations_poll_s))
                continue
            try:
                messages = self._next_batch()
            except ShutdownRequested:
                # Asked to stop while a rebalance callback waited out a Kafka outage (_on_assign).
                log.warning("shutdown_during_outage", uncommitted=0)
                return
            try:
                # Rebuilt as soon as partitions arrive, not when their first record does: the first
                # change after a rebalance should not wait for the warm-up.
                if self._cache_stale and (messages or self._consumer.assignment()):
                    self._rebuild_cache()
                if messages:
                    self._process(messages)
                else:
                    # Idle: a commit refused during a rebalance has no next batch to cover it.
                    self._checkpoint.resend_failed(time.monotonic())
            except ShutdownRequested:
                log.warning("shutdown_during_outage", uncommitted=len(messages))
                return
            try:
                self._settle_identity(now)
            except ShutdownRequested:
                return

    def _refresh_registrations(self) -> bool:
        """Reload the source registrations; True when they changed.

        Not retried in place: the mapping already loaded stays valid, and a loop parked in this retry
        during a store outage would neither consume (nor retry its own writes) nor notice SIGTERM's
        drain. The next poll tries again.
        """
        try:
            return self._catalog.refresh()
        except StoreUnavailable as exc:
            ERRORS.labels(kind="registrations_unavailable").inc()
            log.warning(
                "registrations_unavailable", error=str(exc), retry_in_s=self._config.registrations_poll_s
            )
            return False

    def _next_batch(self) -> list[Message]:
        """Whatever has arrived, up to ``max_batch_events``; when nothing has, block until something
        does (at most ``max_batch_wait_s``).

        A batch is not held open to fill: ``consume(n, timeout)`` waits the whole timeout unless n
        records arrive, and under a steady stream that wait was added to every batch's latency, and
        amplified by the records that piled up meanwhile. Batches form naturally instead: what arrives
        while one batch is applied is the next batch, so they grow with the load (up to the maximum
        in a backlog) and stay small when the stream is light.
        """
        limit = self._config.max_batch_events
        messages = self._consumer.consume(num_messages=limit, timeout=0)
        if messages:
            return messages
        first = self._consumer.consume(num_messages=1, timeout=self._config.max_batch_wait_s)
        if not first:
            return first
        if self._config.batch_linger_s > 0:
            time.sleep(self._config.batch_linger_s)
        return first + self._consumer.consume(num_messages=limit - 1, timeout=0)

    def _settle_identity(self, now: float) -> None:
        """Between batches: follow merges other processes applied, and place parked entities whose
        parent or key owner was applied by another process while their own placement was in flight."""
        config = self._config
        if now - self._redirects_at >= config.redirects_poll_s:
            self._redirects_at = now
            if self._retry(self._applier.load_redirects, "store"):
                # Merges move entities this process has cached (consumer/index_cache.py).
                self._cache_stale = True
        if now - self._parked_at >= config.parked_settle_s:
            self._parked_at = now
            settling = time.perf_counter()
            self._finish_intents()
            self._settle_parked()
            # The loop applies nothing meanwhile: a slow round shows as a freshness tail.
            BATCH_PHASE.labels("settle").observe(time.perf_counter() - settling)

    def _finish_intents(self) -> None:
        """Settle again what moves of placed entities recorded (store/intents.py): what a process
        that died left, and children written concurrently from their parent's old entry. Like the
        waiting room's round, a failure waits for the next period."""
        try:
            self._applier.finish_intents(self._config.settle_intent_grace_s)
        except (StoreUnavailable, StoreRejected) as exc:
            ERRORS.labels(kind="settle_intents").inc()
            log.error("settle_intents_failed", error=str(exc), retry_in_s=self._config.parked_settle_s)

    def _settle_parked(self) -> None:
        """One settling round of the waiting room, which never holds up the batches.

        The round is a fallback for two rare events: an entity's parent applied by another process
        while its own placement was in flight, and a write cut by a killed process that left a copy
        in the waiting room (consumer/applier.py ``_write``). So a failed round is logged and tried
        again at the next period instead of retried in the loop: its scans read through the
        tombstones of every entity parked and placed since the store last compacted them, and past
        the store's
        ``tombstone_failure_threshold`` (100,000 on Cassandra) the read fails every time. Retried in
        the loop like a batch, that stopped the whole pipeline after a large backfill."""
        tables = self._catalog.via_tables()
        try:
            settled = self._applier.settle_parked(tables)
        except (StoreUnavailable, StoreRejected) as exc:
            ERRORS.labels(kind="parked_settle").inc()
            log.error(
                "parked_settle_failed",
                error=str(exc),
                retry_in_s=self._config.parked_settle_s,
                hint=(
                    "batches go on; if the store reports too many tombstones in parked_entities, they "
                    "are purged at compaction once gc_grace_seconds has passed (`nodetool compact "
                    f"{self._store.keyspace} parked_entities` after it)"
                ),
            )
            return
        for (source, table), count in settled.waiting.items():
            ENTITIES_PARKED.labels(source, table).set(count)

    def _on_kafka_error(self, error: KafkaError) -> None:
        """librdkafka's error callback: most errors are transient and retried by the client itself
        (logged only); a fatal one ends this consumer (the loop raises ConsumerFenced)."""
        if error.fatal():
            self._fatal = str(error)
            log.error("kafka_consumer_fatal", error=str(error))
        else:
            log.info("kafka_client_error", error=str(error))

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        # A method, not the checkpoint's: the checkpoint is built after the consumer it commits through.
        self._checkpoint.on_commit(error, partitions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each new partition where consumer/offset_gaps.py says: the beginning for a new
        group, the committed offset otherwise, and not at all (stopped) past an offset gap."""
        if not partitions:
            return
        self._cache_stale = True
        committed = self._retry(lambda: _committed(consumer, partitions), "kafka")
        keys = [(tp.topic, tp.partition) for tp in committed]
        marks = self._retry(lambda: self._watermarks({topic for topic, _partition in keys}), "kafka")
        recovered = self._holds.recovered_partitions(keys)
        starts: list[TopicPartition] = []
        gaps: list[tuple[TopicPartition, int, int]] = []
        for tp in committed:
            key = (tp.topic, tp.partition)
            low, high = marks.get(key, (0, 0))
            offset = tp.offset if tp.offset >= 0 else None
            point = starting_point(offset, low, high)
            if point.stopped and key in recovered:
                point = starting_point(None, low, high)
            if point.stopped:
                # Assigned at a valid offset and paused at once (below): an offset outside the log
                # would put the partition in an error state. Nothing is committed while it is paused,
                # so the group's committed offset still shows the gap.
                starts.append(TopicPartition(tp.topic, tp.partition, low))
                gaps.append((tp, low, high))
            else:
                starts.append(TopicPartition(tp.topic, tp.partition, point.offset))
        consumer.incremental_assign(starts)
        self._checkpoint.assigned({(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0})
        self._holds.assigned(keys)
        # When a rebalance happened is what explains a latency spike of the process (a new owner's
        # cache warm-up, records that waited meanwhile).
        log.info("partitions_assigned", partitions=len(starts))
        for tp, low, high in gaps:
            self._stop_partition(tp.topic, tp.partition, tp.offset, low, high)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            self._cache_stale = True
            keys = [(tp.topic, tp.partition) for tp in partitions]
            # The next owner starts where this process stopped, not at the last acknowledged
            # asynchronous commit: fewer records applied twice.
            self._checkpoint.commit_revoked(keys)
            self._holds.revoked(keys)
            log.info("partitions_revoked", partitions=len(keys))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            self._cache_stale = True
            self._holds.revoked((tp.topic, tp.partition) for tp in partitions)

    def _stop_partition(self, topic: str, partition: int, committed: int | None, low: int, high: int) -> None:
        table = self._catalog.table_for(topic)
        source = table.source if table is not None else topic.split(".", 1)[0]
        detail = gap_message(topic, partition, committed, low, high, source)
        try:
            self._holds.stop_partition(topic, partition, source, detail)
        except StoreUnavailable as exc:
            # Paused here all the same; the hold is written on the next gap report.
            log.error("partition_stopped", topic=topic, partition=partition, error=detail, store=str(exc))
            self._consumer.pause([TopicPartition(topic, partition)])

    def _offset_out_of_range(self, topic: str, partition: int) -> None:
        """A gap that opened while consuming (auto.offset.reset=error reports it)."""
        marks = self._retry(lambda: self._watermarks({topic}), "kafka")
        low, high = marks.get((topic, partition), (0, 0))
        self._stop_partition(topic, partition, self._checkpoint.committed((topic, partition)), low, high)

    def _watermarks(self, topics: set[str]) -> dict[Partition, tuple[int, int]]:
        try:
            with KafkaAdmin(self._kafka.bootstrap_servers) as admin:
                return admin.watermarks(topics)
        except KafkaUnavailable as exc:
            raise TransientFailure(str(exc)) from exc

    def _rebuild_cache(self) -> None:
        """Empty the index cache and, if configured, load the direct-key tables' entries into it.

        Runs once partitions are assigned, before the next batch: the partitions' previous owner has
        finished writing by then (cooperative rebalancing revokes before it reassigns)."""
        self._cache_stale = False
        tables = self._catalog.direct_key_tables() if self._config.index_cache_warm else []
        started = time.monotonic()
        loaded = self._retry(lambda: self._applier.warm_cache(tables), "store")
        if loaded:
            # Hundreds of thousands of long-lived cache objects would make every full collection of
            # the cyclic GC walk them all (a stall of a good fraction of a second, measured as the
            # freshness tail): move everything alive now out of the collector's generations.
            gc.collect()
            gc.freeze()
        if tables:
            log.info("index_cache_warmed", entries=loaded, seconds=round(time.monotonic() - started, 1))

    def _process(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        located: list[Located] = []
        # The record each located change came from (to park it if the store refuses it).
        sources_of: list[Message] = []
        origins: list[Partition] = []
        # When Kafka Connect produced each located record (ms), to split freshness in two.
        produced_ms: list[int] = []
        last_offsets: dict[Partition, int] = {}
        # Step 1: the first record of each partition held back (its source paused meanwhile).
        held_back: dict[Partition, int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal() or error.code() == KafkaError._FATAL:
                    self._fatal = str(error)
                elif error.code() == KafkaError._AUTO_OFFSET_RESET:
                    self._offset_out_of_range(str(message.topic()), int(message.partition() or 0))
                elif error.code() != KafkaError._PARTITION_EOF:
                    ERRORS.labels(kind="kafka").inc()
                    log.warning("kafka_error", error=str(error))
                continue
            topic = str(message.topic())
            origin = (topic, int(message.partition() or 0))
            offset = int(message.offset() or 0)
            if origin in held_back or self._holds.partition_stopped(origin):
                held_back.setdefault(origin, offset)
                continue
            table = self._catalog.table_for(topic)
            if table is not None and self._holds.source_paused(table.source):
                held_back[origin] = offset
                continue
            last_offsets[origin] = offset
            if table is None and self._catalog.removed(topic):
                continue  # its source was removed: dropped with the subscription
            try:
                change = self._locate(message)
            except TransientFailure:
                # The retry machinery is built only when needed: per record it would cost more than
                # decoding the record.
                change = self._retry(lambda m=message: self._locate(m), "registry")  # type: ignore[misc]
            if change is not None:
                located.append(change)
                sources_of.append(message)
                origins.append(origin)
                produced_ms.append(message.timestamp()[1])
        BATCH_EVENTS.observe(len(messages))
        observe_consumed(located)
        decoded = time.perf_counter()
        BATCH_PHASE.labels("decode").observe(decoded - started)

        # Step 2.
        isolated = self._isolator.apply(located)
        for index, poison in sorted(isolated.refused.items()):
            self._park(sources_of[index], poison, located[index].table.source)
        applied = [i for i, outcome in enumerate(isolated.outcomes) if outcome is not None]
        observe_applied(
            [located[i] for i in applied],
            [isolated.outcomes[i] for i in applied],  # type: ignore[misc]
            [produced_ms[i] for i in applied],
            time.time(),
        )
        for i in applied:
            self._lag.applied(origins[i], located[i].event.ts_seconds)
        # Step 3.
        self._retry(lambda: self._view_events.publish(last_offsets), "registry")
        flushing = time.perf_counter()
        self._retry(self._dlq.flush, "dead_letter")
        self._retry(self._view_events.flush, "view_events")
        committing = time.perf_counter()
        BATCH_PHASE.labels("dead_letter").observe(committing - flushing)
        # Step 4.
        self._checkpoint.commit_batch(last_offsets)
        self._holds.committed(last_offsets)
        if held_back:
            self._holds.rewind(held_back)
        BATCH_PHASE.labels("commit").observe(time.perf_counter() - committing)

    def _locate(self, message: Message) -> Located | None:
        """Decode and place one record; poison goes to the dead-letter topic and yields None."""
        topic = str(message.topic())
        table = self._catalog.table_for(topic)
        change_error: PoisonRecord
        try:
            change = locate(topic, table, message.key(), message.value(), self._decode)
        except TransientFailure:
            raise
        except PoisonRecord as exc:
            change_error = exc
        except Exception as exc:
            # Anything else is unexpected: one record must never stop the pipeline.
            change_error = Unexpected.of(exc)
        else:
            if change is None and table is not None:
                EVENTS_APPLIED.labels(table.source, table.table, "tombstone", "skipped").inc()
            return change
        self._park(message, change_error, table.source if table is not None else None)
        return None

    def _park(self, message: Message, error: PoisonRecord, source: str | None) -> None:
        log.warning(
            "record_dead_lettered",
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            reason=error.reason,
            error=str(error),
            dead_letter_topic=self._dlq.topic,
        )
        self._dlq.park(message, error)
        if source is not None and self._storm.parked(source) and not self._holds.source_paused(source):
            detail = (
                f"{self._storm.threshold} records dead-lettered within {self._storm.window_s:.0f} s; "
                f"last: {error.reason}: {str(error)[:300]}"
            )
            self._retry(lambda: self._holds.pause_source(source, detail), "store")

    def _decode(self, data: bytes) -> dict[str, Any]:
        record: dict[str, Any] = self._decoder.decode(data)[1]
        return record

    def _retry(self, action: Callable[[], T], what: str) -> T:
        def stopping() -> bool:
            # Asked after every failed attempt: a loop retrying an outage is live (consumer/health.py).
            self._health.progressed()
            return self._stopping

        return retry_transient(action, what, stopping=stopping, backoff=self._backoff)


def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """The group's committed offsets of ``partitions``; the coordinator not answering (a broker
    restarting) is transient."""
    try:
        return consumer.committed(partitions, timeout=30)
    except KafkaException as exc:
        raise TransientFailure(f"committed offsets of {len(partitions)} partitions: {exc}") from exc
