"""Park records that can never be applied, with their original bytes, in the dead-letter topic.

Headers say where the record came from and why it failed, so an operator can fix the cause and
replay it to its original topic unchanged:
``scv.dlt.topic``, ``scv.dlt.partition``, ``scv.dlt.offset``, ``scv.dlt.reason`` (bounded label),
``scv.dlt.error`` (message, at most 1 KiB), ``scv.dlt.failed_at`` (ISO-8601); the original headers
follow untouched. The record's own key and value are copied byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from consumer.exceptions import PoisonRecord, TransientFailure
from consumer.metrics import DEAD_LETTERED

__all__ = ["DeadLetterQueue", "dead_letter_headers"]


def dead_letter_headers(message: Message, error: PoisonRecord) -> list[tuple[str, str | bytes | None]]:
    headers: list[tuple[str, str | bytes | None]] = [
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


class DeadLetterQueue:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._failures: list[KafkaError] = []

    @property
    def topic(self) -> str:
        return self._topic

    def park(self, message: Message, error: PoisonRecord) -> None:
        self._producer.produce(
            self._topic,
            key=message.key(),
            value=message.value(),
            headers=dead_letter_headers(message, error),
            on_delivery=self._on_delivery,
        )
        DEAD_LETTERED.labels(topic=message.topic(), reason=error.reason).inc()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every parked record is acknowledged; offsets are committed only after this."""
        remaining = self._producer.flush(timeout_s)
        failures, self._failures = self._failures, []
        if remaining or failures:
            raise TransientFailure(
                f"dead-letter topic {self._topic}: {remaining} records unacknowledged, "
                f"{len(failures)} failed ({failures[:1]}); the batch will be retried"
            )

    def _on_delivery(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._failures.append(error)
