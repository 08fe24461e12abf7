"""The replicator process: poll a batch, decode, apply, commit — at least once, never lossy.

    Replicator(get_settings()).run()    # until SIGTERM/SIGINT

Commit protocol for every batch, in this order (the safety argument):
1. decode every record; a record that can never be applied is parked in the dead-letter topic, a
   registry outage is retried (the record is not parked);
2. write the batch's mutations to the store and wait for every acknowledgement (retried with
   backoff while the store is out);
3. flush the dead-letter producer and wait for every acknowledgement;
4. commit the offset after the last record of each partition — asynchronously, so the next batch
   does not wait for the broker; synchronously for partitions being revoked and at shutdown.
A crash anywhere before 4, or a commit that fails, redelivers records; re-applying them is harmless
because every write carries the source change's timestamp. A commit is only ever sent after steps
2-3, so no committed offset covers a write that is not durable. SIGTERM sets a flag checked between
batches, so the batch in flight completes steps 1-4 before the consumer leaves the group.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import start_http_server
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from consumer.applier import Applier
from consumer.catalog import MappingCatalog
from consumer.deadletter import DeadLetterQueue
from consumer.envelope import to_change_event
from consumer.exceptions import PlacementError, PoisonRecord, ReplicatorError, TransientFailure
from consumer.gc_pauses import watch_gc_pauses
from consumer.index_cache import IndexCache
from consumer.mapping import place
from consumer.metrics import (
    BATCH_EVENTS,
    BATCH_PHASE,
    CONSUMER_LAG_OFFSETS,
    CONSUMER_LAG_SECONDS,
    ERRORS,
    EVENTS_APPLIED,
)
from consumer.observe import observe_applied, observe_consumed
from consumer.planner import Located
from consumer.wire import ApicurioContent, AvroDecoder
from scv.settings import Settings
from store.exceptions import StoreUnavailable
from store.index import EntityIndex
from store.registrations import RegistrationStore
from store.session import connect
from store.writer import ViewWriter

__all__ = ["Replicator", "ShutdownRequested"]

log = structlog.get_logger(__name__)
T = TypeVar("T")

_LAG_EVERY_S = 5.0


class ShutdownRequested(Exception):
    """Raised out of a retry loop when SIGTERM arrives during an outage: nothing is committed."""


class Replicator:
    def __init__(self, settings: Settings, metrics_port: int | None = None) -> None:
        self._settings = settings
        self._config = settings.consumer
        self._metrics_port = self._config.metrics_port if metrics_port is None else metrics_port
        self._stopping = False
        self._last_source_ts: dict[tuple[str, int], float] = {}
        # Offsets acknowledged by the group coordinator, and the newest ones sent (step 4).
        self._committed: dict[tuple[str, int], int] = {}
        self._sent: dict[tuple[str, int], int] = {}
        self._lag_at = 0.0
        self._registrations_at = 0.0
        # Set by a rebalance or a registration change: the index cache must be rebuilt before the
        # next batch (consumer/index_cache.py says why).
        self._cache_stale = True

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
        kafka = self._settings.kafka
        store = self._settings.store
        if self._metrics_port:
            self._serve_metrics()
        watch_gc_pauses()
        try:
            cluster, session = self._retry(lambda: connect(store), "store_connect")
        except ShutdownRequested:
            log.warning("shutdown_before_store_connected")
            return
        try:
            self._catalog = MappingCatalog(RegistrationStore(session, store.keyspace))
            self._applier = Applier(
                ViewWriter(
                    session, store.keyspace, self._config.write_concurrency, self._config.batch_partitions
                ),
                EntityIndex(session, store.keyspace, self._config.write_concurrency),
                IndexCache(self._config.index_cache_entries),
            )
            self._decoder = AvroDecoder(
                SchemaRegistryClient({"url": kafka.schema_registry_url}),
                fallback=ApicurioContent(kafka.registry_native_url) if kafka.registry_native_url else None,
            )
            self._ensure_dead_letter_topic()
            producer = Producer(
                {
                    "bootstrap.servers": kafka.bootstrap_servers,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                }
            )
            self._dlq = DeadLetterQueue(producer, self._config.dead_letter_topic)
            self._consumer = Consumer(self._consumer_config())
            log.info("replicator_started", group=self._config.group_id, metrics_port=self._metrics_port)
            try:
                self._loop()
                self._commit_sent()
            finally:
                self._consumer.close()
                producer.flush(10)
                log.info("replicator_stopped")
        finally:
            cluster.shutdown()

    def _serve_metrics(self) -> None:
        host, port = self._config.metrics_host, self._metrics_port
        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            raise ReplicatorError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}. Another replicator (or another "
                f"program) holds the port: stop it, or give this one its own port with "
                f"SCV_CONSUMER__METRICS_PORT (0 turns the endpoint off)"
            ) from exc

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._settings.kafka.bootstrap_servers,
            "group.id": self._config.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # New CDC topics (a table's first change) must be noticed in seconds, not 5 minutes.
            "topic.metadata.refresh.interval.ms": 5000,
            # A store outage pauses the loop in retries; keep the member in the group meanwhile.
            "max.poll.interval.ms": 600_000,
            "on_commit": self._on_commit,
        }

    def _ensure_dead_letter_topic(self) -> None:
        kafka = self._settings.kafka
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        topic = self._config.dead_letter_topic
        futures = admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=kafka.topic_partitions,
                    replication_factor=kafka.replication_factor,
                    config={"retention.ms": str(30 * 24 * 3600 * 1000)},
                )
            ]
        )
        try:
            futures[topic].result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        subscribed = False
        while not self._stopping:
            now = time.monotonic()
            if now - self._registrations_at >= self._config.registrations_poll_s:
                self._registrations_at = now
                if self._refresh_registrations() and self._catalog.topics:
                    self._consumer.subscribe(
                        [self._catalog.subscription_pattern()],
                        on_assign=self._on_assign,
                        on_revoke=self._on_revoke,
                        on_lost=self._on_assign,
                    )
                    self._cache_stale = True
                    subscribed = True
                    log.info("subscribed", topics=len(self._catalog.topics))
            if not subscribed:
                time.sleep(min(0.5, self._config.registrations_poll_s))
                continue
            messages = self._next_batch()
            try:
                # Rebuilt as soon as partitions arrive, not when their first record does: the first
                # change after a rebalance should not wait for the warm-up.
                if self._cache_stale and (messages or self._consumer.assignment()):
                    self._rebuild_cache()
                if messages:
                    self._process(messages)
            except ShutdownRequested:
                log.warning("shutdown_during_outage", uncommitted=len(messages))
                return
            if now - self._lag_at >= _LAG_EVERY_S:
                self._lag_at = now
                self._report_lag()

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

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            self._cache_stale = True

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            self._cache_stale = True
            # The next owner starts where this process stopped, not at the last acknowledged
            # asynchronous commit: fewer records applied twice.
            self._commit_sent({(tp.topic, tp.partition) for tp in partitions})
            for tp in partitions:
                self._sent.pop((tp.topic, tp.partition), None)

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
        origins: list[tuple[str, int]] = []
        # When Kafka Connect produced each located record (ms), to split freshness in two.
        produced_ms: list[int] = []
        last_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    ERRORS.labels(kind="kafka").inc()
                    log.warning("kafka_error", error=str(error))
                continue
            origin = (str(message.topic()), int(message.partition() or 0))
            last_offsets[origin] = int(message.offset() or 0)
            try:
                change = self._locate(message)
            except TransientFailure:
                # The retry machinery is built only when needed: per record it would cost more than
                # decoding the record.
                change = self._retry(lambda m=message: self._locate(m), "registry")  # type: ignore[misc]
            if change is not None:
                located.append(change)
                origins.append(origin)
                produced_ms.append(message.timestamp()[1])
        BATCH_EVENTS.observe(len(messages))
        observe_consumed(located)
        decoded = time.perf_counter()
        BATCH_PHASE.labels("decode").observe(decoded - started)

        outcomes = self._retry(lambda: self._applier.apply(located), "store") if located else []
        observe_applied(located, outcomes, produced_ms, time.time())
        for change, origin in zip(located, origins, strict=True):
            self._last_source_ts[origin] = change.event.ts_seconds
        flushing = time.perf_counter()
        self._retry(self._dlq.flush, "dead_letter")
        committing = time.perf_counter()
        BATCH_PHASE.labels("dead_letter").observe(committing - flushing)
        self._commit(last_offsets)
        BATCH_PHASE.labels("commit").observe(time.perf_counter() - committing)

    def _locate(self, message: Message) -> Located | None:
        """Decode and place one record; poison goes to the dead-letter topic and yields None."""
        topic = str(message.topic())
        table = self._catalog.table_for(topic)
        try:
            if table is None:
                raise PlacementError(f"topic {topic} belongs to no registered source table")
            raw_value = message.value()
            if raw_value is None:
                # Debezium's tombstone after a delete: it lets Kafka compact the key away; the delete
                # event before it already removed the row.
                EVENTS_APPLIED.labels(table.source, table.table, "tombstone", "skipped").inc()
                return None
            raw_key = message.key()
            key = self._decoder.decode(raw_key)[1] if raw_key else None
            value = self._decoder.decode(raw_value)[1]
            event = to_change_event(table.source, key, value)
            placement = None if event.op == "t" else place(event, table)
            return Located(event, table, placement)
        except PoisonRecord as exc:
            log.warning(
                "record_dead_lettered",
                topic=topic,
                partition=message.partition(),
                offset=message.offset(),
                reason=exc.reason,
                error=str(exc),
                dead_letter_topic=self._dlq.topic,
            )
            self._dlq.park(message, exc)
            return None

    def _commit(self, last_offsets: dict[tuple[str, int], int]) -> None:
        """Step 4, asynchronously: the acknowledgement (or the error) arrives in ``_on_commit``."""
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last_offsets.items()]
        if self._send_commit(offsets, asynchronous=True):
            for tp in offsets:
                self._sent[(tp.topic, tp.partition)] = tp.offset

    def _commit_sent(self, origins: set[tuple[str, int]] | None = None) -> None:
        """Commit, synchronously, the newest offsets sent (of ``origins``, or all): on revoke and at
        shutdown, so nothing applied is left to redeliver."""
        offsets = [
            TopicPartition(t, p, o)
            for (t, p), o in self._sent.items()
            if (origins is None or (t, p) in origins) and self._committed.get((t, p)) != o
        ]
        if self._send_commit(offsets, asynchronous=False):
            for tp in offsets:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _send_commit(self, offsets: list[TopicPartition], *, asynchronous: bool) -> bool:
        if not offsets:
            return False
        try:
            # Two literal calls: the client's type stubs overload commit() on the flag's value.
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partitions: the new owner re-applies from the last acknowledged
            # commit, which is harmless (idempotent writes). Anything else is counted the same way.
            ERRORS.labels(kind="commit").inc()
            log.warning("commit_failed", error=str(exc))
            return False
        return True

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            # The next commit covers these offsets too; until then a restart re-applies them.
            ERRORS.labels(kind="commit").inc()
            log.warning("commit_failed", error=str(error))
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _report_lag(self) -> None:
        try:
            assignment = self._consumer.assignment()
        except KafkaException:
            return
        now = time.time()
        for tp in assignment:
            try:
                # Cached: the high watermark arrives with every fetch response, so this costs no broker
                # round trip (a synchronous query per partition would stall the loop for seconds).
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            committed = self._committed.get((tp.topic, tp.partition))
            if committed is None or high < 0:
                continue
            lag = max(0, high - committed)
            CONSUMER_LAG_OFFSETS.labels(tp.topic, str(tp.partition)).set(lag)
            last = self._last_source_ts.get((tp.topic, tp.partition))
            CONSUMER_LAG_SECONDS.labels(tp.topic, str(tp.partition)).set(
                max(0.0, now - last) if lag and last else 0.0
            )

    # -- retries ---------------------------------------------------------------------------------

    def _retry(self, action: Callable[[], T], what: str) -> T:
        """Run ``action`` until it succeeds; transient failures back off exponentially, forever,
        unless shutdown is requested (then ``ShutdownRequested``: the batch stays uncommitted)."""

        def stop(_state: Any) -> bool:
            return self._stopping

        def before_sleep(state: Any) -> None:
            ERRORS.labels(kind=f"{what}_unavailable").inc()
            outcome = state.outcome
            log.warning(
                "dependency_unavailable_retrying",
                dependency=what,
                attempt=state.attempt_number,
                error=str(outcome.exception()) if outcome else None,
            )

        retrying = Retrying(
            retry=retry_if_exception_type((TransientFailure, StoreUnavailable)),
            wait=wait_exponential_jitter(initial=self._config.retry_initial_s, max=self._config.retry_max_s),
            stop=stop,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(action)
        except (TransientFailure, StoreUnavailable) as exc:
            raise ShutdownRequested(str(exc)) from exc
