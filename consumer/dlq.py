"""The dead-letter topic as operators see it: list parked records, show one, replay them after the fix,
purge them. The `scv dlq` commands (consumer/dlq_cli.py) are a thin layer over this.

    queue = DeadLetters(settings)
    parked = queue.records(source="crm")                  # oldest first
    queue.show("3:41")                                     # one record, decoded where possible
    queue.replay([r.id for r in parked])                  # to their original topic and partition
    queue.purge([r.id for r in parked])                   # hidden from now on

A record's id is ``PARTITION:OFFSET`` in the dead-letter topic. The topic is append-only, so replays
and purges are recorded in it as *marker* records (key ``scv.dlt.marker``, header ``scv.dlt.marker``
= ``replayed`` or ``purged``, header ``scv.dlt.targets`` = the ids); ``records`` applies them. A purge
of everything (``purge_all``) also deletes the records from the topic (Kafka deletes a partition's
records only up to an offset, so a selective purge hides them and retention deletes them later).

Replay produces the original key, value and headers (without the ``scv.dlt.*`` ones) to the original
topic and partition, where the replicator applies them like any change: harmless if the change was
meanwhile applied or superseded, because every write carries its source commit time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.exceptions import ReplicatorError
from consumer.wire import ApicurioContent, AvroDecoder
from scv.config.settings import Settings
from scv.contracts.cells import to_json_compatible
from scv.kafka.admin import KafkaAdmin

__all__ = ["DeadLetters", "DlqError", "ParkedView", "Shown"]

MARKER_KEY: Final = b"scv.dlt.marker"
_MARKER: Final = "scv.dlt.marker"
_TARGETS: Final = "scv.dlt.targets"
_IDS_PER_MARKER: Final = 2000
_READ_TIMEOUT_S: Final = 30.0


class DlqError(ReplicatorError):
    """A dead-letter command cannot do what was asked (unknown id, nothing selected, Kafka out)."""


@dataclass(frozen=True)
class ParkedView:
    id: str
    topic: str
    partition: int
    offset: int
    source: str
    table: str
    reason: str
    error: str
    failed_at: str
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)
    original_headers: list[tuple[str, str | bytes | None]] = field(repr=False)
    status: str = "parked"  # or "replayed"
    op: str = "?"
    key_text: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "table": self.table,
            "op": self.op,
            "key": self.key_text,
            "reason": self.reason,
            "error": self.error,
            "failed_at": self.failed_at,
            "status": self.status,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class Shown:
    record: ParkedView
    key: Any
    value: Any
    decode_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.record.summary(),
            "headers": {name: _text(value) for name, value in self.record.original_headers},
            "decoded_key": self.key,
            "decoded_value": self.value,
            "decode_error": self.decode_error,
        }


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _source_and_table(topic: str) -> tuple[str, str]:
    # <source>.<schema>.<table>: the topic naming of scv/contracts/naming.py.
    source, _, table = topic.partition(".")
    return source, table


def _plain(value: Any) -> Any:
    """A decoded Avro record as JSON-compatible data (the read contract's forms)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return to_json_compatible(value)
    try:
        return to_json_compatible(value)
    except TypeError:
        return str(value)


class DeadLetters:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.consumer.dead_letter_topic
        self._decoder: AvroDecoder | None = None

    @property
    def topic(self) -> str:
        return self._topic

    # -- reading ------------------------------------------------------------------------------------

    def records(self, source: str | None = None, *, decode: bool = True) -> list[ParkedView]:
        """Every parked record not purged (oldest first per partition), optionally of one source."""
        parked: list[ParkedView] = []
        replayed: set[str] = set()
        purged: set[str] = set()
        for message in self._read_all():
            headers = {name: _text(value) for name, value in (message.headers() or [])}
            marker = headers.get(_MARKER)
            if marker is not None:
                ids = {i for i in headers.get(_TARGETS, "").split(",") if i}
                (purged if marker == "purged" else replayed).update(ids)
                continue
            if "scv.dlt.topic" not in headers:
                continue
            parked.append(self._view(message, headers))
        out: list[ParkedView] = []
        for record in parked:
            if record.id in purged or (source is not None and record.source != source):
                continue
            status = "replayed" if record.id in replayed else "parked"
            out.append(self._described(record, status) if decode else record)
        return out

    def show(self, record_id: str) -> Shown:
        found = {r.id: r for r in self.records(decode=False)}
        record = found.get(record_id)
        if record is None:
            raise DlqError(f"no parked record {record_id} in {self._topic}; `scv dlq list` shows the ids")
        record = self._described(record, record.status)
        try:
            key = _plain(self._decode(record.key)) if record.key else None
            value = _plain(self._decode(record.value)) if record.value else None
        except Exception as exc:
            return Shown(record, _text(record.key), None, f"{type(exc).__name__}: {exc}")
        return Shown(record, key, value, None)

    # -- acting -------------------------------------------------------------------------------------

    def replay(self, records: Iterable[ParkedView]) -> list[ParkedView]:
        """Produce each record to its original topic and partition; mark them replayed."""
        chosen = list(records)
        if not chosen:
            return []
        with KafkaAdmin(self._settings.kafka.bootstrap_servers) as admin:
            partitions = admin.partitions({r.topic for r in chosen})
        missing = sorted({r.topic for r in chosen} - set(partitions))
        if missing:
            raise DlqError(
                f"topic(s) {', '.join(missing)} no longer exist: re-onboard the source first "
                f"(`scv sources add`), or purge these records"
            )
        producer = self._producer()
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        for record in chosen:
            # The original partition keeps the record's order with the rest of its key's changes.
            partition = record.partition if record.partition in partitions[record.topic] else -1
            producer.produce(
                record.topic,
                key=record.key,
                value=record.value,
                headers=record.original_headers,
                partition=partition,
                on_delivery=delivered,
            )
            producer.poll(0)
        remaining = producer.flush(_READ_TIMEOUT_S)
        if remaining or failures:
            raise DlqError(
                f"{remaining} replayed records unacknowledged, {len(failures)} failed ({failures[:1]}); "
                f"nothing was marked replayed: run the replay again (it is harmless)"
            )
        self._mark("replayed", [r.id for r in chosen])
        return chosen

    def purge(self, records: Iterable[ParkedView]) -> list[ParkedView]:
        chosen = list(records)
        if chosen:
            self._mark("purged", [r.id for r in chosen])
        return chosen

    def purge_all(self) -> int:
        """Delete every record of the dead-letter topic (markers included); returns how many."""
        with KafkaAdmin(self._settings.kafka.bootstrap_servers) as admin:
            marks = admin.watermarks([self._topic])
        ends = [TopicPartition(t, p, high) for (t, p), (low, high) in marks.items() if high > low]
        if not ends:
            return 0
        admin_client = AdminClient({"bootstrap.servers": self._settings.kafka.bootstrap_servers})
        futures = admin_client.delete_records(ends, request_timeout=_READ_TIMEOUT_S)
        for future in futures.values():
            future.result(_READ_TIMEOUT_S)
        return sum(high - low for (low, high) in marks.values())

    def select(
        self,
        ids: Iterable[str] = (),
        *,
        source: str | None = None,
        everything: bool = False,
        include_replayed: bool = False,
    ) -> list[ParkedView]:
        """Records chosen by id, by source, or all; refuses an empty or unknown selection."""
        wanted = list(ids)
        if not wanted and source is None and not everything:
            raise DlqError("name record ids, --source NAME or --all")
        records = self.records(source=source)
        if wanted:
            by_id = {r.id: r for r in records}
            unknown = [i for i in wanted if i not in by_id]
            if unknown:
                raise DlqError(f"no parked record {', '.join(unknown)}; `scv dlq list` shows the ids")
            return [by_id[i] for i in wanted]
        return [r for r in records if include_replayed or r.status == "parked"]

    # -- Kafka --------------------------------------------------------------------------------------

    def _read_all(self) -> Iterator[Any]:
        with KafkaAdmin(self._settings.kafka.bootstrap_servers) as admin:
            marks = admin.watermarks([self._topic])
        todo = {key: high for key, (low, high) in marks.items() if high > low}
        if not todo:
            return
        consumer = Consumer(
            {
                "bootstrap.servers": self._settings.kafka.bootstrap_servers,
                "group.id": f"scv-dlq-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        try:
            consumer.assign([TopicPartition(t, p, marks[(t, p)][0]) for (t, p) in todo])
            deadline = time.monotonic() + _READ_TIMEOUT_S
            while todo:
                if time.monotonic() > deadline:
                    raise DlqError(f"reading {self._topic} timed out with {len(todo)} partitions unread")
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                key = (str(message.topic()), int(message.partition() or 0))
                offset = int(message.offset() or 0)
                if offset + 1 >= todo.get(key, 0):
                    todo.pop(key, None)
                yield message
        finally:
            consumer.close()

    def _producer(self) -> Producer:
        return Producer(
            {
                "bootstrap.servers": self._settings.kafka.bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "message.max.bytes": self._settings.kafka.max_message_bytes,
            }
        )

    def _mark(self, marker: str, ids: list[str]) -> None:
        producer = self._producer()
        for start in range(0, len(ids), _IDS_PER_MARKER):
            chunk = ids[start : start + _IDS_PER_MARKER]
            producer.produce(
                self._topic,
                key=MARKER_KEY,
                value=None,
                headers=[(_MARKER, marker.encode()), (_TARGETS, ",".join(chunk).encode())],
            )
        if producer.flush(_READ_TIMEOUT_S):
            raise DlqError(f"the {marker} marker was not acknowledged; run the command again")

    # -- decoding -----------------------------------------------------------------------------------

    def _view(self, message: Any, headers: dict[str, str]) -> ParkedView:
        topic = headers["scv.dlt.topic"]
        source, table = _source_and_table(topic)
        original: list[tuple[str, str | bytes | None]] = [
            (name, value if isinstance(value, bytes) else _text(value).encode())
            for name, value in (message.headers() or [])
            if not name.startswith("scv.dlt.")
        ]
        return ParkedView(
            id=f"{message.partition()}:{message.offset()}",
            topic=topic,
            partition=int(headers.get("scv.dlt.partition", "-1") or -1),
            offset=int(headers.get("scv.dlt.offset", "-1") or -1),
            source=source,
            table=table,
            reason=headers.get("scv.dlt.reason", ""),
            error=headers.get("scv.dlt.error", ""),
            failed_at=headers.get("scv.dlt.failed_at", ""),
            key=message.key(),
            value=message.value(),
            original_headers=original,
        )

    def _described(self, record: ParkedView, status: str) -> ParkedView:
        """op and key, decoded through the registry where possible."""
        op, key_text = "?", _text(record.key)[:80] if record.key else ""
        try:
            if record.value:
                op = str(self._decode(record.value).get("op", "?"))
            elif record.value is None:
                op = "tombstone"
            if record.key:
                key_text = json.dumps(_plain(self._decode(record.key)), sort_keys=True, default=str)
        except Exception:
            # Undecodable records are what this lists: op stays "?", the key its raw text; `show`
            # reports the decoding error.
            op = op if op != "?" else "?"
        return replace(record, status=status, op=op, key_text=key_text)

    def _decode(self, data: bytes) -> dict[str, Any]:
        if self._decoder is None:
            registry = self._settings.registry
            self._decoder = AvroDecoder(
                SchemaRegistryClient({"url": registry.url}),
                fallback=ApicurioContent(registry.native_url) if registry.native_url else None,
            )
        record: dict[str, Any] = self._decoder.decode(data)[1]
        return record
