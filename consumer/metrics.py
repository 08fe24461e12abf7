"""Every metric the replicator exports (Prometheus conventions: base units, `_total`, bounded labels).

Labels are source/table/op/reason/kind and topic/partition — all bounded by the registered sources;
never a customer or entity id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_EVENTS",
    "CONSUMER_LAG_OFFSETS",
    "CONSUMER_LAG_SECONDS",
    "DEAD_LETTERED",
    "ERRORS",
    "EVENTS_APPLIED",
    "EVENTS_CONSUMED",
    "FRESHNESS",
    "INDEX_CACHE",
    "REGISTERED_TABLES",
    "WRITE_LATENCY",
]

EVENTS_CONSUMED = Counter(
    "scv_events_consumed_total", "Change events read from Kafka.", ["source", "table", "op"]
)
EVENTS_APPLIED = Counter(
    "scv_events_applied_total",
    "Change events applied to the view (outcome: applied, skipped, unknown_delete, truncated, tombstone).",
    ["source", "table", "op", "outcome"],
)
DEAD_LETTERED = Counter(
    "scv_events_dead_lettered_total",
    "Records parked in the dead-letter topic with their original bytes.",
    ["topic", "reason"],
)
ERRORS = Counter("scv_errors_total", "Errors by kind (transient ones are retried).", ["kind"])
BATCH_EVENTS = Histogram(
    "scv_batch_events",
    "Records per applied batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
WRITE_LATENCY = Histogram(
    "scv_store_write_seconds",
    "Time to write one batch's mutations to the store.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRESHNESS = Histogram(
    "scv_freshness_seconds",
    "Source commit -> applied in the view (streamed changes; snapshot reads excluded).",
    ["source"],
    # Fine below 1 s, where the freshness objective (p99 < 1 s) is decided.
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60, 300),
)
CONSUMER_LAG_OFFSETS = Gauge(
    "scv_consumer_lag_offsets", "High watermark minus committed offset.", ["topic", "partition"]
)
CONSUMER_LAG_SECONDS = Gauge(
    "scv_consumer_lag_seconds",
    "Age of the newest applied source change while records wait; 0 when caught up.",
    ["topic", "partition"],
)
REGISTERED_TABLES = Gauge("scv_registered_tables", "Tables the replicator currently applies.")
INDEX_CACHE = Counter(
    "scv_index_cache_lookups_total",
    "Trusted index lookups answered by the replicator's cache (hit) or read from the store (miss).",
    ["result"],
)
