"""Every series the pipeline exporter exports (Prometheus conventions: base units, `_total`, bounded
labels), built at each scrape from the newest facts of each collector.

Consumer group lag uses kafka-lag-exporter's names, so its dashboards work on these series:
``kafka_consumergroup_group_{offset,lag,lag_seconds}{cluster_name,group,topic,partition}``,
``kafka_consumergroup_group_max_lag{,_seconds}{cluster_name,group,is_simple_consumer}``,
``kafka_consumergroup_group_sum_lag{cluster_name,group}``,
``kafka_consumergroup_group_topic_sum_lag{cluster_name,group,topic}`` and
``kafka_partition_{latest,earliest}_offset{cluster_name,topic,partition}``. Its per-member labels
(member_host, consumer_id, client_id) are left out: a consumer_id is new at every restart, and each
one would start a new series.

Per source (label ``source``, bounded by the onboarded sources): connector and task states as one
series per state with value 1 or 0 (``scv_source_connector_state{source,state}``,
``scv_source_task_state{source,task,state}``), the slot (``scv_source_slot_active``,
``scv_source_slot_retained_wal_bytes``, ``scv_source_slot_confirmed_lag_bytes``,
``scv_source_slot_confirmed_flush_age_seconds``), ``scv_source_heartbeat_age_seconds`` and
``scv_source_database_up``. Dependencies: ``scv_dependency_up{dependency}`` and
``scv_dependency_probe_seconds{dependency}`` for kafka, connect, registry and store. The exporter's
own rounds: ``scv_exporter_round_seconds{collector}``, ``scv_exporter_last_round_timestamp_seconds``
and ``scv_exporter_round_errors_total{collector}``.

Series are built from the newest facts at each scrape (a custom collector), so a source, group or
partition that disappears disappears from the next scrape instead of freezing at its last value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scv.exporter.facts import CONNECTOR_STATES, TASK_STATES, GroupFacts, Probe, SourceFacts

__all__ = ["KAFKA_CLIENT_RESTARTS", "ROUND_ERRORS", "PipelineCollector", "PipelineState"]

ROUND_ERRORS = Counter(
    "scv_exporter_round_errors_total",
    "Collection rounds that failed, by collector (kafka, sources, probes); the log says why.",
    ["collector"],
)
KAFKA_CLIENT_RESTARTS = Counter(
    "scv_exporter_kafka_collector_restarts_total",
    "Times the Kafka collector's child process died (a librdkafka abort during a broker restart) or hung "
    "and was replaced (scv/exporter/kafka_process.py).",
)


@dataclass
class PipelineState:
    """The newest facts of each collector thread; each field is replaced whole, never mutated."""

    cluster_name: str
    sources: tuple[SourceFacts, ...] = ()
    groups: tuple[GroupFacts, ...] = ()
    heartbeat_ages: dict[str, float] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    # collector -> (duration of its last round in seconds, when it ended as a Unix time)
    rounds: dict[str, tuple[float, float]] = field(default_factory=dict)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class PipelineCollector(Collector):
    def __init__(self, state: PipelineState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        yield from self._group_families(state.cluster_name, state.groups)
        yield from self._source_families(state.sources, state.heartbeat_ages)
        yield from self._dependency_families(state.probes)
        yield from self._round_families(state.rounds)

    # -- consumer groups (kafka-lag-exporter names) ----------------------------------------------

    @staticmethod
    def _group_families(cluster: str, groups: tuple[GroupFacts, ...]) -> Iterator[Metric]:
        partition_labels = ["cluster_name", "group", "topic", "partition"]
        offset = _gauge(
            "kafka_consumergroup_group_offset",
            "Offset the group last committed, per partition.",
            partition_labels,
        )
        lag = _gauge(
            "kafka_consumergroup_group_lag",
            "Records the group has not committed, per partition.",
            partition_labels,
        )
        lag_s = _gauge(
            "kafka_consumergroup_group_lag_seconds",
            "Estimated time the oldest record the group has not committed has been waiting, per partition.",
            partition_labels,
        )
        group_labels = ["cluster_name", "group", "is_simple_consumer"]
        max_lag = _gauge(
            "kafka_consumergroup_group_max_lag", "Highest lag in records of the group.", group_labels
        )
        max_lag_s = _gauge(
            "kafka_consumergroup_group_max_lag_seconds", "Highest lag in seconds of the group.", group_labels
        )
        sum_lag = _gauge(
            "kafka_consumergroup_group_sum_lag",
            "Records the group has not committed.",
            ["cluster_name", "group"],
        )
        topic_sum = _gauge(
            "kafka_consumergroup_group_topic_sum_lag",
            "Records of the topic the group has not committed.",
            ["cluster_name", "group", "topic"],
        )
        members = _gauge(
            "scv_consumer_group_members",
            "Members of the consumer group (0: nobody consumes).",
            ["cluster_name", "group"],
        )
        latest = _gauge(
            "kafka_partition_latest_offset",
            "End offset of the partition.",
            ["cluster_name", "topic", "partition"],
        )
        earliest = _gauge(
            "kafka_partition_earliest_offset",
            "Earliest offset still held.",
            ["cluster_name", "topic", "partition"],
        )
        seen: set[tuple[str, int]] = set()
        for g in groups:
            by_topic: dict[str, int] = {}
            for p in g.partitions:
                labels = [cluster, g.group, p.topic, str(p.partition)]
                offset.add_metric(labels, p.committed)
                lag.add_metric(labels, p.lag)
                if p.lag_seconds is not None:
                    lag_s.add_metric(labels, p.lag_seconds)
                by_topic[p.topic] = by_topic.get(p.topic, 0) + p.lag
                if (p.topic, p.partition) not in seen:
                    seen.add((p.topic, p.partition))
                    latest.add_metric([cluster, p.topic, str(p.partition)], p.latest)
                    earliest.add_metric([cluster, p.topic, str(p.partition)], p.earliest)
            simple = "true" if g.simple else "false"
            max_lag.add_metric([cluster, g.group, simple], g.max_lag)
            max_lag_s.add_metric([cluster, g.group, simple], g.max_lag_seconds)
            sum_lag.add_metric([cluster, g.group], sum(by_topic.values()))
            for topic, total in sorted(by_topic.items()):
                topic_sum.add_metric([cluster, g.group, topic], total)
            members.add_metric([cluster, g.group], g.members)
        yield from (offset, lag, lag_s, max_lag, max_lag_s, sum_lag, topic_sum, members, latest, earliest)

    # -- sources -----------------------------------------------------------------------------------

    @staticmethod
    def _source_families(sources: tuple[SourceFacts, ...], heartbeats: dict[str, float]) -> Iterator[Metric]:
        connector = _gauge(
            "scv_source_connector_state",
            "1 for the Debezium connector's current Kafka Connect state, 0 for the others.",
            ["source", "state"],
        )
        task = _gauge(
            "scv_source_task_state",
            "1 for the connector task's current state, 0 for the others.",
            ["source", "task", "state"],
        )
        db_up = _gauge(
            "scv_source_database_up",
            "1 when the source database answered the exporter (as the CDC user).",
            ["source"],
        )
        active = _gauge(
            "scv_source_slot_active",
            "1 when a walsender streams from the source's slot (0: none, or no slot).",
            ["source"],
        )
        retained = _gauge(
            "scv_source_slot_retained_wal_bytes",
            "WAL the source database keeps for the slot (current WAL position - restart_lsn).",
            ["source"],
        )
        confirmed = _gauge(
            "scv_source_slot_confirmed_lag_bytes",
            "WAL written since the slot's consumer last confirmed (current position - confirmed_flush_lsn).",
            ["source"],
        )
        age = _gauge(
            "scv_source_slot_confirmed_flush_age_seconds",
            "Time since the database's WAL went past the slot's confirmed_flush_lsn.",
            ["source"],
        )
        heartbeat = _gauge(
            "scv_source_heartbeat_age_seconds",
            "Time since the newest record of the source's Debezium heartbeat topic.",
            ["source"],
        )
        for s in sources:
            for state in CONNECTOR_STATES:
                connector.add_metric([s.source, state], 1.0 if s.connector_state == state else 0.0)
            for t in s.tasks:
                for state in TASK_STATES:
                    task.add_metric([s.source, str(t.id), state], 1.0 if t.state == state else 0.0)
            if s.database_up is not None:
                db_up.add_metric([s.source], 1.0 if s.database_up else 0.0)
            if s.slot is not None:
                active.add_metric([s.source], 1.0 if s.slot.exists and s.slot.active else 0.0)
                if s.slot.retained_wal_bytes is not None:
                    retained.add_metric([s.source], s.slot.retained_wal_bytes)
                if s.slot.confirmed_lag_bytes is not None:
                    confirmed.add_metric([s.source], s.slot.confirmed_lag_bytes)
                if s.slot.confirmed_flush_age_s is not None:
                    age.add_metric([s.source], s.slot.confirmed_flush_age_s)
            if s.heartbeat_topic in heartbeats:
                heartbeat.add_metric([s.source], heartbeats[s.heartbeat_topic])
        yield from (connector, task, db_up, active, retained, confirmed, age, heartbeat)

    # -- dependencies and the exporter itself ------------------------------------------------------

    @staticmethod
    def _dependency_families(probes: dict[str, Probe]) -> Iterator[Metric]:
        up = _gauge(
            "scv_dependency_up", "1 when the dependency answered the exporter's last request.", ["dependency"]
        )
        seconds = _gauge(
            "scv_dependency_probe_seconds",
            "Time the dependency took to answer (or fail) the last request.",
            ["dependency"],
        )
        for name, probe in sorted(probes.items()):
            up.add_metric([name], 1.0 if probe.up else 0.0)
            seconds.add_metric([name], probe.seconds)
        yield from (up, seconds)

    @staticmethod
    def _round_families(rounds: dict[str, tuple[float, float]]) -> Iterator[Metric]:
        duration = _gauge(
            "scv_exporter_round_seconds", "Duration of each collector's last round.", ["collector"]
        )
        last = _gauge(
            "scv_exporter_last_round_timestamp_seconds",
            "When each collector's last round ended (Unix time).",
            ["collector"],
        )
        for name, (seconds, ended) in sorted(rounds.items()):
            duration.add_metric([name], seconds)
            last.add_metric([name], ended)
        yield from (duration, last)
