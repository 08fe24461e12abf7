"""Park records that can never be applied, with their original bytes, in the dead-letter topic.

Headers say where the record came from and why it failed, so an operator can fix the cause and
replay it to its original topic unchanged (`scv dlq replay`, consumer/dlq.py):
``scv.dlt.topic``, ``scv.dlt.partition``, ``scv.dlt.offset``, ``scv.dlt.reason`` (bounded label),
``scv.dlt.error`` (message, at most 1 KiB), ``scv.dlt.failed_at`` (ISO-8601); the original headers
follow untouched. The record's own key and value are copied byte for byte
(registry_schemas/dead_letter.json is the contract).

A parked record is never lost (step 3 of consumer/service.py's protocol):
1. every record handed to ``park`` is kept until the broker acknowledges it;
2. a delivery that fails (broker error, timeout) is kept too, and ``flush`` sends it again;
3. ``flush`` raises ``TransientFailure`` while anything is unacknowledged or failed, so the batch's
   offsets are not committed; the caller retries ``flush`` with backoff;
4. a producer that hit a fatal error (idempotence state lost) is replaced before the next send;
5. a full local queue (``BufferError``) is drained and the produce retried; a record the topic would
   refuse as too large (it cannot be, when the topic follows KafkaSettings.max_message_bytes, but a
   broker may be configured otherwise) is parked without its value, with ``scv.dlt.value_omitted``
   giving its size: the coordinates still locate the original in its topic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.exceptions import PoisonRecord, TransientFailure
from consumer.metrics import DEAD_LETTERED, ERRORS

__all__ = ["DeadLetterQueue", "ParkedRecord", "dead_letter_headers"]

log = structlog.get_logger(__name__)

Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(message: Message, error: PoisonRecord) -> Headers:
    headers: Headers = [
        ("scv.dlt.topic", str(message.topic()).encode()),
        ("scv.dlt.partition", str(message.partition()).encode()),
        ("scv.dlt.offset", str(message.offset()).encode()),
        ("scv.dlt.reason", error.reason.encode()),
        ("scv.dlt.error", str(error).encode()[:1024]),
        ("scv.dlt.failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    original = message.headers() or []
    headers.extend(original.items() if isinstance(original, dict) else original)
    return headers


@dataclass(frozen=True)
class ParkedRecord:
    key: bytes | None
    value: bytes | None
    headers: Headers
    origin: str  # topic/partition@offset, for logs

    def without_value(self, size: int) -> ParkedRecord:
        omitted = ("scv.dlt.value_omitted", str(size).encode())
        return replace(self, value=None, headers=[*self.headers, omitted])


class DeadLetterQueue:
    def __init__(self, make_producer: Callable[[], Producer], topic: str) -> None:
        self._make_producer = make_producer
        self._producer = make_producer()
        self._fatal = False
        self._topic = topic
        # Produced, not yet acknowledged; and delivered with an error, to send again.
        self._in_flight: dict[int, ParkedRecord] = {}
        self._failed: list[tuple[ParkedRecord, KafkaError]] = []
        self._next_id = 0

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def pending(self) -> int:
        """Parked records not yet acknowledged by the broker (in flight or failed)."""
        return len(self._in_flight) + len(self._failed)

    def park(self, message: Message, error: PoisonRecord) -> None:
        record = ParkedRecord(
            message.key(),
            message.value(),
            dead_letter_headers(message, error),
            f"{message.topic()}/{message.partition()}@{message.offset()}",
        )
        self._send(record)
        DEAD_LETTERED.labels(topic=message.topic(), reason=error.reason).inc()

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every parked record is acknowledged; offsets are committed only after this.

        Records whose delivery failed are sent again first; anything still unacknowledged or failed
        raises ``TransientFailure`` and stays here for the next call."""
        if self._fatal:
            # Everything in flight in the broken producer is lost to it: send it all again.
            log.warning("dead_letter_producer_replaced", topic=self._topic)
            lost = KafkaError(KafkaError._FATAL)
            self._failed.extend((record, lost) for record in self._in_flight.values())
            self._in_flight.clear()
            self._producer = self._make_producer()
            self._fatal = False
        failed, self._failed = self._failed, []
        for record, _error in failed:
            self._send(record)
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failed:
            errors = sorted({str(error) for _record, error in self._failed})
            ERRORS.labels(kind="dead_letter_delivery").inc()
            raise TransientFailure(
                f"dead-letter topic {self._topic}: {len(self._in_flight)} parked records unacknowledged, "
                f"{len(self._failed)} failed ({'; '.join(errors[:2]) or 'timed out'}); the batch is not "
                f"committed until they are delivered (check the topic: `scv dlq list`)"
            )

    def _send(self, record: ParkedRecord) -> None:
        while True:
            record_id = self._next_id
            self._next_id += 1
            try:
                self._producer.produce(
                    self._topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    on_delivery=functools.partial(self._on_delivery, record_id),
                )
            except BufferError:
                # The local queue is full: let deliveries drain it, then try again.
                self._producer.poll(0.5)
                continue
            except KafkaException as exc:
                code = exc.args[0].code() if exc.args else None
                if code == KafkaError.MSG_SIZE_TOO_LARGE and record.value is not None:
                    record = self._too_large(record)
                    continue
                raise TransientFailure(f"cannot produce to dead-letter topic {self._topic}: {exc}") from exc
            self._in_flight[record_id] = record
            return

    def _too_large(self, record: ParkedRecord) -> ParkedRecord:
        size = len(record.value or b"")
        log.error(
            "dead_letter_value_omitted",
            origin=record.origin,
            bytes=size,
            topic=self._topic,
            fix="raise the dead-letter topic's max.message.bytes to KafkaSettings.max_message_bytes",
        )
        return record.without_value(size)

    def _on_delivery(self, record_id: int, error: KafkaError | None, _message: Any) -> None:
        record = self._in_flight.pop(record_id, None)
        if record is None or error is None:
            return
        if error.fatal():
            self._fatal = True
        if error.code() == KafkaError.MSG_SIZE_TOO_LARGE and record.value is not None:
            record = self._too_large(record)
        log.warning("dead_letter_delivery_failed", origin=record.origin, error=str(error), topic=self._topic)
        self._failed.append((record, error))
