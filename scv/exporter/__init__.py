"""The pipeline seen from outside its processes: `scv exporter` for Prometheus, `scv status` for people.

    scv exporter                 # serves /metrics on SCV_EXPORTER__PORT (9390)
    scv status [--json] [--watch]

What no single process sees: per source, the Debezium connector's and tasks' states (Kafka Connect),
the replication slot's retained WAL, activity and confirmed position age (PostgreSQL), the heartbeat
topic's age; per consumer group and partition, lag in records and in seconds computed from outside
the consumer; whether the registry and the store answer. `scv status` judges the same facts, with
the replicators' freshness and dead letters from Prometheus, as OK/WARN/FAIL per source.
"""
