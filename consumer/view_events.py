"""Announce changed views: one "customer view changed" event per customer per batch, on a topic keyed
by customer (Avro, registry_schemas/view_changed-value.avsc, subject ``<topic>-value``).

    events = ViewEvents(settings.consumer.view_events_topic)
    applier = Applier(events.tap(writer), index, cache)   # learns which partitions each write touched
    events.start(producer, kafka, registry_url)           # the topic (retried); the schema on first use
    ...apply the batch (step 2 of consumer/service.py's protocol)...
    events.publish(last_offsets)                          # step 3: one event per customer touched
    events.flush()                                        # step 3: acknowledged before the commit

Why each rule holds:
- *After the writes are acknowledged*: the tap records a write only once the store acknowledged it,
  and ``publish`` runs after the batch's last write (moves and truncates included).
- *At most one per customer per batch*: the tap keeps a set per customer; ``publish`` drains it.
- *Never lost on restart (at least once)*: ``flush`` waits for every event's acknowledgement and is
  retried (re-producing what failed) until it succeeds; offsets are committed only after it, so a
  crash before then redelivers the batch, whose replay writes the same customers again and emits
  their events again. One limit: a change that moved an entity between customers, replayed after a
  crash that fell between the store's acknowledgement and the events', announces only the new owner
  (the index already says the entity moved, so the replay writes nothing in the old partition).
- Orphan partitions (children waiting for their parent, consumer/mapping.py) are not customers:
  they are never announced.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import fastavro
import structlog
from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumer.exceptions import RegistryUnavailable, ReplicatorError, TransientFailure
from consumer.metrics import VIEW_EVENTS
from scv.config.settings import KafkaSettings
from scv.contracts.view_changed import Position, ViewChanged, schema_text, subject_of
from scv.kafka.admin import KafkaAdmin, KafkaUnavailable
from store.mutations import DeleteRow, Mutation, PutRow

__all__ = ["EventEncoder", "TappedWriter", "ViewEvents", "ViewTouches"]

log = structlog.get_logger(__name__)

_ORPHANS = "~orphans/"


class Writer(Protocol):
    def apply(self, mutations: Iterable[Mutation]) -> int: ...


class ViewTouches:
    """Which customers' views the batch wrote: sections and newest write timestamp, per customer."""

    def __init__(self) -> None:
        self._touched: dict[str, tuple[set[str], int]] = {}

    def record(self, mutations: Iterable[Mutation]) -> None:
        for mutation in mutations:
            if not isinstance(mutation, PutRow | DeleteRow):
                continue  # index and link writes change no view
            key = mutation.key
            if key.customer_id.startswith(_ORPHANS):
                continue
            sections, newest = self._touched.get(key.customer_id, (set(), 0))
            sections.add(key.kind)
            self._touched[key.customer_id] = (sections, max(newest, mutation.write_ts))

    @property
    def pending(self) -> bool:
        return bool(self._touched)

    def drain(self, applied_ts: datetime, positions: Sequence[Position]) -> list[ViewChanged]:
        touched, self._touched = self._touched, {}
        return [
            ViewChanged(
                customer_id=customer_id,
                sections=tuple(sorted(sections)),
                source_ts=datetime.fromtimestamp(newest / 1_000_000, tz=UTC),
                applied_ts=applied_ts,
                positions=tuple(positions),
            )
            for customer_id, (sections, newest) in sorted(touched.items())
        ]


class TappedWriter:
    """The view's writer, with a tap: every acknowledged write is recorded in ``touches``."""

    def __init__(self, writer: Writer, touches: ViewTouches) -> None:
        self._writer = writer
        self._touches = touches

    def apply(self, mutations: Iterable[Mutation]) -> int:
        batch = list(mutations)
        sent = self._writer.apply(batch)  # raises on failure: nothing recorded
        self._touches.record(batch)
        return sent


class EventEncoder:
    """Encodes a batch's events in the Confluent wire format (magic byte 0, the schema id as 4 bytes
    big-endian, the Avro body), the batch's shared fields once.

    Every event of a batch carries the same ``applied_ts`` and ``positions`` (one per change-topic
    partition the batch read: dozens), and a batch announces hundreds of customers: encoding them
    once per event cost a quarter of the replicator's CPU at 500 changes/s. Avro encodes a record as
    its fields' encodings one after another, so the body is the customer's own fields, encoded per
    event, followed by the shared ones, encoded once; both halves are encoded by fastavro from the
    contract's own field definitions, and a unit test checks the result against the whole record.
    """

    SHARED = ("applied_ts", "positions")

    def __init__(self, schema_json: str) -> None:
        schema = json.loads(schema_json)
        fields = schema["fields"]
        split = len(fields) - len(self.SHARED)
        if tuple(field["name"] for field in fields[split:]) != self.SHARED:
            raise ValueError(f"the view-changed schema must end with the fields {self.SHARED}")
        self._own = fastavro.parse_schema(
            {**schema, "name": f"{schema['name']}Own", "fields": fields[:split]}
        )
        self._shared = fastavro.parse_schema(
            {**schema, "name": f"{schema['name']}Shared", "fields": fields[split:]}
        )

    def shared(self, applied_ts: datetime, positions: Sequence[Position]) -> bytes:
        record = {
            "applied_ts": applied_ts,
            "positions": [
                {"topic": p.topic, "partition": p.partition, "offset": p.offset} for p in positions
            ],
        }
        return _encode(self._shared, record)

    def encode(self, event: ViewChanged, schema_id: int, shared: bytes) -> bytes:
        """``shared``: what ``shared()`` returned for this event's applied_ts and positions."""
        own = _encode(
            self._own,
            {
                "customer_id": event.customer_id,
                "sections": list(event.sections),
                "source_ts": event.source_ts,
            },
        )
        return struct.pack(">bI", 0, schema_id) + own + shared


def _encode(schema: Any, record: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return body.getvalue()


class ViewEvents:
    """The replicator's side of the push: a no-op when ``topic`` is empty."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._touches = ViewTouches()
        self._producer: Producer | None = None
        self._registry: SchemaRegistryClient | None = None
        self._encoder = EventEncoder(schema_text())
        self._schema_id = 0
        # Events produced and not yet acknowledged, by (customer id, their order in the batch).
        self._pending: dict[int, tuple[str, bytes]] = {}
        self._failed: set[int] = set()
        self._sequence = 0

    @property
    def enabled(self) -> bool:
        return bool(self.topic)

    def tap(self, writer: Writer) -> Writer:
        return TappedWriter(writer, self._touches) if self.enabled else writer

    def start(self, producer: Producer, kafka: KafkaSettings, registry_url: str) -> None:
        """Create the topic (keyed by customer; plain retention: compaction would drop history a
        consumer may still need). Raises TransientFailure to be retried. The schema is registered
        with the first events, so a registry outage does not hold the replicator's start."""
        if not self.enabled:
            return
        try:
            with KafkaAdmin(kafka.bootstrap_servers) as admin:
                admin.ensure_topic(
                    self.topic, partitions=kafka.topic_partitions, replication_factor=kafka.replication_factor
                )
        except KafkaUnavailable as exc:
            raise TransientFailure(f"cannot create the view events topic {self.topic}: {exc}") from exc
        self._registry = SchemaRegistryClient({"url": registry_url})
        self._producer = producer
        log.info("view_events_started", topic=self.topic)

    def _register(self) -> None:
        if self._schema_id or self._registry is None:
            return
        subject = subject_of(self.topic)
        try:
            self._schema_id = self._registry.register_schema(subject, Schema(schema_text(), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code is not None and exc.http_status_code < 500:
                raise ReplicatorError(
                    f"the registry refused the schema of {subject}: {exc}; compare "
                    f"registry_schemas/view_changed-value.avsc with the subject's latest version"
                ) from exc
            raise RegistryUnavailable(f"cannot register {subject}: {exc}") from exc
        except Exception as exc:  # connection refused, timeouts: the HTTP client's own errors
            raise RegistryUnavailable(f"cannot register {subject}: {exc}") from exc
        log.info("view_events_schema_registered", subject=subject, schema_id=self._schema_id)

    def publish(self, last_offsets: Mapping[tuple[str, int], int]) -> int:
        """Produce one event per customer whose view the batch wrote; returns how many. Raises
        RegistryUnavailable (to be retried) before anything is drained, so nothing is lost."""
        if self._producer is None or not self._touches.pending:
            return 0
        self._register()
        positions = [
            Position(topic, partition, offset) for (topic, partition), offset in sorted(last_offsets.items())
        ]
        applied_ts = datetime.now(UTC)
        events = self._touches.drain(applied_ts, positions)
        shared = self._encoder.shared(applied_ts, positions)
        for event in events:
            self._sequence += 1
            self._pending[self._sequence] = (
                event.customer_id,
                self._encoder.encode(event, self._schema_id, shared),
            )
            self._produce(self._sequence)
        VIEW_EVENTS.inc(len(events))
        return len(events)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every event is acknowledged; offsets are committed only after this. Events
        whose delivery failed are produced again and TransientFailure raised, so the caller's retry
        flushes them again (nothing is dropped)."""
        if self._producer is None or not self._pending:
            return
        self._producer.flush(timeout_s)
        failed, self._failed = sorted(self._failed), set()
        for sequence in failed:
            self._produce(sequence)
        if self._pending:
            raise TransientFailure(
                f"view events topic {self.topic}: {len(self._pending)} events unacknowledged "
                f"({len(failed)} failed and produced again); the batch waits"
            )

    def _produce(self, sequence: int) -> None:
        assert self._producer is not None
        customer_id, value = self._pending[sequence]

        def delivered(error: KafkaError | None, _message: Any, sequence: int = sequence) -> None:
            if error is None:
                self._pending.pop(sequence, None)
            else:
                self._failed.add(sequence)

        self._producer.produce(self.topic, key=customer_id.encode(), value=value, on_delivery=delivered)
