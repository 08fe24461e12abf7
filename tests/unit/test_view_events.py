"""The push: one "customer view changed" event per customer per batch, only for acknowledged
writes, never dropped when the broker fails a delivery (consumer/view_events.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from consumer.exceptions import TransientFailure
from consumer.view_events import EventEncoder, TappedWriter, ViewEvents, ViewTouches
from scv.contracts.view_changed import Position, ViewChanged, schema_text
from store.mutations import DeleteIndex, DeleteRow, EntityRef, IndexEntry, Mutation, PutIndex, PutRow, RowKey

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
POSITIONS = [Position("crm.public.customers", 0, 41)]


def put(customer: str, kind: str, ts: int, entity: str = "1") -> PutRow:
    return PutRow(RowKey(customer, kind, "crm", "public.t", entity), {"a": 1}, True, ts, ts)


def test_one_event_per_customer_with_every_section_touched() -> None:
    touches = ViewTouches()
    touches.record([put("42", "email", 10), put("42", "profile", 30), put("43", "email", 20)])
    touches.record([DeleteRow(RowKey("42", "email", "crm", "public.t", "2"), 20)])
    events = touches.drain(NOW, POSITIONS)
    assert [(e.customer_id, e.sections) for e in events] == [("42", ("email", "profile")), ("43", ("email",))]
    assert events[0].source_ts == datetime.fromtimestamp(30 / 1_000_000, tz=UTC)
    assert events[0].positions == tuple(POSITIONS)


def test_drain_empties_the_batch() -> None:
    touches = ViewTouches()
    touches.record([put("42", "email", 10)])
    touches.drain(NOW, POSITIONS)
    assert touches.drain(NOW, POSITIONS) == []


def test_orphan_partitions_and_index_writes_are_not_announced() -> None:
    touches = ViewTouches()
    ref = EntityRef("core", "public.cards", "7")
    touches.record(
        [
            put("~orphans/core/public.accounts/3", "card", 10),
            PutIndex(IndexEntry(ref, "card", "42", None, 10), 10),
            DeleteIndex(ref, 11),
        ]
    )
    assert touches.drain(NOW, POSITIONS) == []


class FailingWriter:
    def apply(self, mutations: Iterable[Mutation]) -> int:
        raise RuntimeError("store out")


class CountingWriter:
    def apply(self, mutations: Iterable[Mutation]) -> int:
        return len(list(mutations))


def test_tap_records_only_acknowledged_writes() -> None:
    touches = ViewTouches()
    with pytest.raises(RuntimeError):
        TappedWriter(FailingWriter(), touches).apply([put("42", "email", 10)])
    assert touches.drain(NOW, POSITIONS) == []
    assert TappedWriter(CountingWriter(), touches).apply(iter([put("42", "email", 10)])) == 1
    assert [e.customer_id for e in touches.drain(NOW, POSITIONS)] == ["42"]


@pytest.mark.parametrize(
    "positions", [(), tuple(POSITIONS), tuple(Position(f"crm.public.t{i}", i, i**5) for i in range(72))]
)
def test_event_is_avro_in_the_confluent_wire_format(positions: tuple[Position, ...]) -> None:
    schema = fastavro.parse_schema(json.loads(schema_text()))
    encoder = EventEncoder(schema_text())
    for event in (
        ViewChanged("42", ("email",), NOW, NOW, positions),
        ViewChanged(
            "é" * 300, ("card", "email", "profile"), datetime(1970, 1, 1, tzinfo=UTC), NOW, positions
        ),
    ):
        data = encoder.encode(event, 17, encoder.shared(event.applied_ts, event.positions))
        assert data[:5] == b"\x00\x00\x00\x00\x11"
        whole = io.BytesIO()
        fastavro.schemaless_writer(whole, schema, event.to_record())
        assert data[5:] == whole.getvalue()  # the halves, joined, are the record's own encoding
        assert (
            ViewChanged.from_record(fastavro.schemaless_reader(io.BytesIO(data[5:]), schema, None)) == event
        )


def test_encoder_refuses_a_schema_whose_shared_fields_are_not_last() -> None:
    schema = json.loads(schema_text())
    schema["fields"] = schema["fields"][-1:] + schema["fields"][:-1]
    with pytest.raises(ValueError, match="must end with"):
        EventEncoder(json.dumps(schema))


class FakeProducer:
    """Delivers on flush; the first ``fail`` deliveries fail."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.queued: list[tuple[bytes, Any]] = []
        self.delivered: list[bytes] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        self.queued.append((key, on_delivery))

    def flush(self, timeout: float) -> int:
        queued, self.queued = self.queued, []
        for key, callback in queued:
            if self.fail:
                self.fail -= 1
                callback("broker said no", None)
            else:
                self.delivered.append(key)
                callback(None, None)
        return 0


def started(producer: FakeProducer) -> ViewEvents:
    events = ViewEvents("scv.view-changed")
    events._producer = producer  # type: ignore[assignment] - start() would register in a real registry
    events._schema_id = 1  # registered: the real registration is tested on the stack
    return events


def test_publish_emits_one_event_per_customer_of_the_batch() -> None:
    producer = FakeProducer()
    events = started(producer)
    events.tap(CountingWriter()).apply(
        [put("42", "email", 1), put("42", "email", 2, "2"), put("43", "card", 3)]
    )
    assert events.publish({("crm.public.customers", 0): 41}) == 2
    events.flush()
    assert producer.delivered == [b"42", b"43"]


def test_failed_delivery_blocks_the_commit_and_is_produced_again() -> None:
    producer = FakeProducer(fail=1)
    events = started(producer)
    events.tap(CountingWriter()).apply([put("42", "email", 1)])
    events.publish({("crm.public.customers", 0): 41})
    with pytest.raises(TransientFailure, match="produced again"):
        events.flush()
    events.flush()  # the caller's retry: the re-produced event is delivered now
    assert producer.delivered == [b"42"]


def test_disabled_topic_changes_nothing() -> None:
    events = ViewEvents("")
    writer = CountingWriter()
    assert events.tap(writer) is writer
    assert events.publish({("t", 0): 1}) == 0
    events.flush()
