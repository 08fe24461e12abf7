"""Per-event metrics of one batch, recorded once per label set rather than once per event.

    observe_consumed(located)                                    # after decoding
    observe_applied(located, outcomes, produced_ms, now=time.time())   # after the writes

A ``labels(...)`` lookup takes a lock and builds a key each time; at ~1,000 events/s, five of them
per event were a visible share of the replicator's loop (py-spy). Counters are summed per label set
and incremented once; histograms need one observation per event, but their children are looked up
once per source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from consumer.metrics import CAPTURE_LATENCY, DELIVERY_LATENCY, EVENTS_APPLIED, EVENTS_CONSUMED, FRESHNESS
from consumer.planner import Located, Outcome

__all__ = ["observe_applied", "observe_consumed"]


def observe_consumed(located: Sequence[Located]) -> None:
    consumed: Counter[tuple[str, str, str]] = Counter(
        (change.table.source, change.table.table, change.event.op) for change in located
    )
    for labels, count in consumed.items():
        EVENTS_CONSUMED.labels(*labels).inc(count)


def observe_applied(
    located: Sequence[Located], outcomes: Sequence[Outcome], produced_ms: Sequence[int], now: float
) -> None:
    """``produced_ms``: each record's Kafka timestamp (when Kafka Connect produced it), 0 if unknown;
    ``now``: when the batch's writes were acknowledged (epoch seconds)."""
    applied: Counter[tuple[str, str, str, str]] = Counter()
    latency: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for change, outcome, produced in zip(located, outcomes, produced_ms, strict=True):
        event = change.event
        applied[(event.source, event.table, event.op, outcome)] += 1
        if event.snapshot is not None:
            continue  # a snapshot read's commit time is the snapshot's, not a change's
        fresh, capture, delivery = latency.setdefault(event.source, ([], [], []))
        committed = event.ts_seconds
        fresh.append(max(0.0, now - committed))
        if produced > 0:
            capture.append(max(0.0, produced / 1000 - committed))
            delivery.append(max(0.0, now - produced / 1000))
    for labels, count in applied.items():
        EVENTS_APPLIED.labels(*labels).inc(count)
    for source, (fresh, capture, delivery) in latency.items():
        for histogram, values in (
            (FRESHNESS, fresh),
            (CAPTURE_LATENCY, capture),
            (DELIVERY_LATENCY, delivery),
        ):
            child = histogram.labels(source)
            for value in values:
                child.observe(value)
