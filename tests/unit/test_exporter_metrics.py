"""The exporter's series from its facts: names, labels and values (scv/exporter/metrics.py), the
replicator targets it writes for Prometheus, and the client.id contract replicators advertise."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scv.contracts.discovery import metrics_port_of, replicator_client_id
from scv.exporter.discovery import ReplicatorTargets
from scv.exporter.facts import GroupFacts, PartitionLag, Probe, SlotFacts, SourceFacts, TaskFacts
from scv.exporter.kafka_lag import replicator_endpoints
from scv.exporter.metrics import PipelineCollector, PipelineState
from scv.kafka.admin import GroupInfo, GroupMember


def _samples(state: PipelineState) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(state))
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _source(**changes: object) -> SourceFacts:
    base = SourceFacts(
        source="crm",
        connector="scv-crm",
        connector_state="RUNNING",
        connector_error=None,
        tasks=(TaskFacts(0, "FAILED", "ConnectException: boom"),),
        topics=("crm.public.customers",),
        heartbeat_topic="__debezium-heartbeat.crm",
        database_up=True,
        slot=SlotFacts("scv_crm", exists=True, active=False, retained_wal_bytes=4096, confirmed_lag_bytes=10),
    )
    return base.__class__(**{**base.__dict__, **changes})


def test_group_lag_uses_kafka_lag_exporter_names_and_bounded_labels() -> None:
    group = GroupFacts(
        "scv-replicator",
        "STABLE",
        False,
        members=2,
        partitions=(
            PartitionLag("crm.public.customers", 0, committed=90, earliest=0, latest=100, lag_seconds=12.5),
            PartitionLag("crm.public.customers", 1, committed=50, earliest=0, latest=50, lag_seconds=0.0),
        ),
    )
    samples = _samples(PipelineState(cluster_name="prod", groups=(group,)))
    part0 = frozenset(
        {
            ("cluster_name", "prod"),
            ("group", "scv-replicator"),
            ("topic", "crm.public.customers"),
            ("partition", "0"),
        }
    )
    assert samples[("kafka_consumergroup_group_lag", part0)] == 10
    assert samples[("kafka_consumergroup_group_lag_seconds", part0)] == 12.5
    assert samples[("kafka_consumergroup_group_offset", part0)] == 90
    group_labels = frozenset(
        {("cluster_name", "prod"), ("group", "scv-replicator"), ("is_simple_consumer", "false")}
    )
    assert samples[("kafka_consumergroup_group_max_lag_seconds", group_labels)] == 12.5
    assert samples[("kafka_consumergroup_group_max_lag", group_labels)] == 10
    assert (
        samples[
            ("scv_consumer_group_members", frozenset({("cluster_name", "prod"), ("group", "scv-replicator")}))
        ]
        == 2
    )
    label_names = {name for (_, labels) in samples for name, _ in labels}
    assert not label_names & {"member_host", "consumer_id", "client_id"}


def test_connector_and_task_states_are_one_series_per_state() -> None:
    samples = _samples(PipelineState(cluster_name="c", sources=(_source(),)))
    running = frozenset({("source", "crm"), ("state", "RUNNING")})
    failed_task = frozenset({("source", "crm"), ("task", "0"), ("state", "FAILED")})
    assert samples[("scv_source_connector_state", running)] == 1
    assert samples[("scv_source_connector_state", frozenset({("source", "crm"), ("state", "FAILED")}))] == 0
    assert samples[("scv_source_task_state", failed_task)] == 1
    assert samples[("scv_source_slot_active", frozenset({("source", "crm")}))] == 0
    assert samples[("scv_source_slot_retained_wal_bytes", frozenset({("source", "crm")}))] == 4096


def test_unknown_figures_are_absent_rather_than_zero() -> None:
    source = _source(database_up=False, slot=None)
    samples = _samples(PipelineState(cluster_name="c", sources=(source,)))
    names = {name for name, _ in samples}
    assert ("scv_source_database_up", frozenset({("source", "crm")})) in samples
    assert "scv_source_slot_retained_wal_bytes" not in names
    assert "scv_source_heartbeat_age_seconds" not in names


def test_a_source_that_is_gone_leaves_the_next_scrape() -> None:
    state = PipelineState(cluster_name="c", sources=(_source(),))
    assert any(name == "scv_source_connector_state" for name, _ in _samples(state))
    state.sources = ()
    assert not any(name == "scv_source_connector_state" for name, _ in _samples(state))


def test_dependency_probes_are_exported_as_up_and_seconds() -> None:
    state = PipelineState(cluster_name="c", probes={"store": Probe("store", False, 5.0, "timeout")})
    samples = _samples(state)
    assert samples[("scv_dependency_up", frozenset({("dependency", "store")}))] == 0
    assert samples[("scv_dependency_probe_seconds", frozenset({("dependency", "store")}))] == 5.0


def test_a_replicator_advertises_its_metrics_port_in_its_client_id() -> None:
    assert metrics_port_of(replicator_client_id(9410)) == 9410
    assert metrics_port_of(replicator_client_id(0)) is None
    assert metrics_port_of("rdkafka") is None
    assert metrics_port_of("scv-replicator-99999") is None


def test_replicator_endpoints_come_from_group_members_that_advertise_a_port() -> None:
    group = GroupInfo(
        "g",
        "STABLE",
        False,
        (
            GroupMember("scv-replicator-9400", "10.0.0.7"),
            GroupMember("scv-replicator-9401", "10.0.0.7"),
            GroupMember("some-other-client", "10.0.0.9"),
            GroupMember("scv-replicator-9400", "fd00::1"),
        ),
    )
    assert replicator_endpoints(group) == ("10.0.0.7:9400", "10.0.0.7:9401", "[fd00::1]:9400")


def test_replicator_targets_file_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "targets" / "replicator.json"
    targets = ReplicatorTargets(path)
    group = GroupFacts("g", "STABLE", False, 1, (), replicator_endpoints=("127.0.0.1:9410",))
    assert targets.write([group])
    assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9410"], "labels": {"group": "g"}}]
    assert not targets.write([group])
    path.write_text("[]\n")  # reset by `scv stack up` meanwhile
    assert targets.write([group])
    assert targets.write([])
    assert json.loads(path.read_text()) == []


def test_a_failed_task_is_reported_by_its_root_cause() -> None:
    from scv.exporter.sources import _first_line

    trace = (
        "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the producer.\n"
        "\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n"
        "Caused by: io.debezium.DebeziumException: wrapped\n"
        "Caused by: org.postgresql.util.PSQLException: FATAL: terminating connection due to admin\n"
        "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2734)"
    )
    assert _first_line(trace) == "PSQLException: FATAL: terminating connection due to admin"
    assert _first_line("java.lang.IllegalStateException") == "IllegalStateException"
    assert (
        _first_line(
            "org.apache.kafka.connect.errors.ConnectException: stopped\n"
            "Caused by: org.postgresql.util.PSQLException: Database connection failed reading from copy\n"
            "Caused by: java.io.EOFException\n"
        )
        == "PSQLException: Database connection failed reading from copy (EOFException)"
    )
    assert _first_line(None) is None
