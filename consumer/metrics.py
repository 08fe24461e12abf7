"""Every metric the replicator exports (Prometheus conventions: base units, `_total`, bounded labels).

Labels are source/table/op/reason/kind and topic/partition — all bounded by the registered sources;
never a customer or entity id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_EVENTS",
    "BATCH_PHASE",
    "CAPTURE_LATENCY",
    "CONSUMER_LAG_OFFSETS",
    "CONSUMER_LAG_SECONDS",
    "DEAD_LETTERED",
    "DELIVERY_LATENCY",
    "ENTITIES_PARKED",
    "ERRORS",
    "EVENTS_APPLIED",
    "EVENTS_CONSUMED",
    "FRESHNESS",
    "GC_PAUSE",
    "INDEX_CACHE",
    "INDEX_CACHE_ENTRIES",
    "LATENCY_BUCKETS",
    "OFFSET_GAPS",
    "PARTITION_STOPPED",
    "REGISTERED_TABLES",
    "REPLICATOR_LIVE",
    "REPLICATOR_READY",
    "SOURCE_PAUSED",
    "STORE_REJECTIONS",
    "VIEW_EVENTS",
    "WORKER_RESTARTS",
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
# Fine below 1 s, where the freshness objective (p99 < 1 s) is decided.
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
FRESHNESS = Histogram(
    "scv_freshness_seconds",
    "Source commit -> applied in the view (streamed changes; snapshot reads excluded).",
    ["source"],
    buckets=LATENCY_BUCKETS,
)
# Freshness split at the Kafka record's timestamp (set when Kafka Connect produced it): whether a
# stale view is Debezium's doing (capture) or the replicator's (delivery).
CAPTURE_LATENCY = Histogram(
    "scv_capture_seconds",
    "Source commit -> record produced to Kafka by the connector (streamed changes).",
    ["source"],
    buckets=LATENCY_BUCKETS,
)
DELIVERY_LATENCY = Histogram(
    "scv_delivery_seconds",
    "Record produced to Kafka -> applied in the view (streamed changes).",
    ["source"],
    buckets=LATENCY_BUCKETS,
)
BATCH_PHASE = Histogram(
    "scv_batch_phase_seconds",
    "Time one batch spends in each step of the commit protocol (decode, index_read, write, moves, "
    "truncates, dead_letter, commit), and the loop in each settling round between batches (settle).",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GC_PAUSE = Histogram(
    "scv_gc_pause_seconds",
    "Pauses of the replicator's loop for CPython's cyclic garbage collector, by generation.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
CONSUMER_LAG_OFFSETS = Gauge(
    "scv_consumer_lag_offsets", "High watermark minus committed offset.", ["topic", "partition"]
)
CONSUMER_LAG_SECONDS = Gauge(
    "scv_consumer_lag_seconds",
    "Age of the newest applied source change while records wait; 0 when caught up.",
    ["topic", "partition"],
)
ENTITIES_PARKED = Gauge(
    "scv_entities_parked",
    "Entities waiting for the row that names their customer (a parent or lookup key owner not seen yet); "
    "counted by the periodic settling scan, which reads at most 1,000 per table.",
    ["source", "table"],
)
REGISTERED_TABLES = Gauge("scv_registered_tables", "Tables the replicator currently applies.")
INDEX_CACHE = Counter(
    "scv_index_cache_lookups_total",
    "Trusted index lookups answered by the replicator's cache (hit) or read from the store (miss).",
    ["result"],
)
INDEX_CACHE_ENTRIES = Gauge(
    "scv_index_cache_entries", "Index entries held in the replicator's memory (about 0.4 KB each)."
)
STORE_REJECTIONS = Counter(
    "scv_store_rejections_total",
    "Changes the store refuses for good (reason: empty_key, key_too_large, invalid_request); each is "
    "parked in the dead-letter topic with the store's error and the rest of its batch applied.",
    ["reason"],
)
SOURCE_PAUSED = Gauge(
    "scv_source_paused",
    "1 while this process holds back a source's records (reason: poison_storm, when its records were "
    "dead-lettered faster than the threshold); `scv sources resume NAME` lifts it.",
    ["source", "reason"],
)
PARTITION_STOPPED = Gauge(
    "scv_partition_stopped",
    "1 while a partition is stopped (reason: offset_gap, when retention deleted records the group never "
    "consumed); `scv sources resnapshot NAME` recovers it.",
    ["topic", "partition", "reason"],
)
OFFSET_GAPS = Counter(
    "scv_offset_gaps_total",
    "Partitions found with records deleted by retention before the group consumed them.",
    ["topic"],
)
WORKER_RESTARTS = Counter(
    "scv_worker_restarts_total",
    "Times `scv consume --processes N` restarted this worker slot after a crash (exported by the "
    "worker itself, counting its slot's restarts since the supervisor started).",
    ["worker"],
)
REPLICATOR_LIVE = Gauge(
    "scv_replicator_live", "1 while /livez answers 200: the loop progressed recently (consumer/health.py)."
)
REPLICATOR_READY = Gauge(
    "scv_replicator_ready", "1 while /readyz answers 200: partitions assigned and caught up within bound."
)
VIEW_EVENTS = Counter(
    "scv_view_events_total", "Customer view changed events produced (one per customer per batch)."
)
