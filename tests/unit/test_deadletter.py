"""Dead letters are never lost: a failed delivery is sent again and blocks the commit until it lands; a
full queue or a too-large record is handled, never a crash (an in-memory producer stands in for Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.deadletter import DeadLetterQueue
from consumer.exceptions import DecodeError, TransientFailure


class FakeMessage:
    def __init__(self, offset: int, value: bytes | None = b"v") -> None:
        self._offset = offset
        self._value = value

    def topic(self) -> str:
        return "crm.public.customers"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("trace", b"t")]


class FakeProducer:
    """Produces into ``delivered``; ``fail_next`` deliveries fail with ``error``; ``full`` produce
    calls raise BufferError first; values over ``max_bytes`` are refused as too large."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []
        self.produced = 0
        self.pending: list[tuple[dict[str, Any], Callable[[KafkaError | None, Any], None]]] = []
        self.fail_next = 0
        self.error = KafkaError(KafkaError.INVALID_RECORD)
        self.full = 0
        self.max_bytes = 10**9

    def produce(self, topic: str, key: Any, value: Any, headers: Any, on_delivery: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        if value is not None and len(value) > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.produced += 1
        self.pending.append(({"topic": topic, "key": key, "value": value, "headers": headers}, on_delivery))

    def poll(self, _timeout: float) -> int:
        return self.flush(0)

    def flush(self, _timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for record, callback in pending:
            if self.fail_next:
                self.fail_next -= 1
                callback(self.error, None)
            else:
                self.delivered.append(record)
                callback(None, None)
        return 0


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


def test_a_failed_delivery_blocks_the_flush_and_is_sent_again(producer: FakeProducer) -> None:
    queue = DeadLetterQueue(lambda: producer, "scv.dead-letter")
    producer.fail_next = 1
    queue.park(FakeMessage(7), DecodeError("bad bytes"))  # type: ignore[arg-type]
    with pytest.raises(TransientFailure, match="1 failed"):
        queue.flush()
    assert producer.delivered == []
    assert queue.pending == 1
    # The retry of the batch calls flush again: the record is produced again, and only then is the
    # batch allowed to commit.
    queue.flush()
    assert producer.produced == 2
    assert [dict(r["headers"])["scv.dlt.offset"] for r in producer.delivered] == [b"7"]
    assert queue.pending == 0


def test_a_full_local_queue_is_drained_and_the_record_produced(producer: FakeProducer) -> None:
    queue = DeadLetterQueue(lambda: producer, "scv.dead-letter")
    producer.full = 2
    queue.park(FakeMessage(1), DecodeError("x"))  # type: ignore[arg-type]
    queue.flush()
    assert len(producer.delivered) == 1


def test_a_record_too_large_for_the_topic_is_parked_without_its_value(producer: FakeProducer) -> None:
    queue = DeadLetterQueue(lambda: producer, "scv.dead-letter")
    producer.max_bytes = 100
    queue.park(FakeMessage(3, value=b"x" * 500), DecodeError("x"))  # type: ignore[arg-type]
    queue.flush()
    (record,) = producer.delivered
    assert record["value"] is None
    assert dict(record["headers"])["scv.dlt.value_omitted"] == b"500"
    assert dict(record["headers"])["scv.dlt.offset"] == b"3"


def test_a_producer_that_failed_fatally_is_replaced(producer: FakeProducer) -> None:
    made: list[FakeProducer] = []

    def make() -> FakeProducer:
        made.append(FakeProducer() if made else producer)
        return made[-1]

    queue = DeadLetterQueue(make, "scv.dead-letter")  # type: ignore[arg-type]
    producer.fail_next = 1
    producer.error = KafkaError(KafkaError._FATAL, fatal=True)
    queue.park(FakeMessage(9), DecodeError("x"))  # type: ignore[arg-type]
    with pytest.raises(TransientFailure):
        queue.flush()
    queue.flush()
    assert len(made) == 2
    assert len(made[1].delivered) == 1
