"""The peer benchmark's pure parts: CQL tables from a change topic's Avro schemas, the worker's and
the sink's configuration, the drain's counting, and the report's peer section."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench.peer.connector import (
    SINK_CLASS,
    PeerNames,
    parse_properties,
    plugin_path_entry,
    sink_config,
    worker_properties,
)
from bench.peer.exceptions import PeerSchemaError
from bench.peer.probe import ProbeResult, quantile
from bench.peer.run import (
    PeerDrain,
    PeerFreshness,
    PeerResult,
    backlog_committed,
    failure_summary,
    median_window_rate,
)
from bench.peer.section import ScvFigures, peer_section
from bench.peer.tables import collection_fields, cql_type, peer_table, table_name
from bench.report import render_report
from connectors.avro_types import avro_type_for
from scv.config.settings import StoreSettings


def _field(name: str, pg_type: str, nullable: bool = False) -> dict[str, Any]:
    avro = avro_type_for(pg_type)
    return {"name": name, "type": ["null", avro] if nullable else avro}


def _envelope(topic: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Debezium's envelope as the registry holds it: the row record defined in `before`, referred
    to by name in `after`."""
    row = {"type": "record", "name": "Value", "fields": fields}
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": topic,
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
        ],
    }


def _key(topic: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Key", "namespace": topic, "fields": list(fields)}


CUSTOMERS = "crm.public.customers"
CUSTOMER_FIELDS = [
    _field("customer_id", "bigint"),
    _field("first_name", "text"),
    _field("birth_date", "date"),
    _field("vip", "boolean"),
    _field("tags", "text[]"),
    _field("preferences", "jsonb"),
    _field("external_ref", "uuid"),
    _field("score", "smallint", nullable=True),
    _field("created_at", "timestamp with time zone"),
    _field("seen_at", "timestamp without time zone", nullable=True),
    _field("balance", "numeric(12,2)"),
]


def test_peer_table_has_a_column_per_row_field_typed_as_the_connector_maps_it() -> None:
    table = peer_table(
        CUSTOMERS, _key(CUSTOMERS, _field("customer_id", "bigint")), _envelope(CUSTOMERS, CUSTOMER_FIELDS)
    )
    assert table.name == "crm_customers"
    assert table.columns == (
        ("customer_id", "bigint"),
        ("first_name", "text"),
        ("birth_date", "int"),  # io.debezium.time.Date is an int32, not Connect's Date
        ("vip", "boolean"),
        ("tags", "list<text>"),
        ("preferences", "text"),
        ("external_ref", "text"),
        ("score", "smallint"),  # connect.type int16
        ("created_at", "text"),  # ZonedTimestamp is a string
        ("seen_at", "bigint"),  # MicroTimestamp is an int64
        ("balance", "text"),  # decimal.handling.mode=string
    )
    assert table.key == ("customer_id",)


def test_peer_table_puts_every_key_field_in_the_partition_key_as_the_connector_does() -> None:
    topic = "crm.public.consents"
    fields = [_field("customer_id", "bigint"), _field("purpose", "text"), _field("granted", "boolean")]
    key = _key(topic, _field("customer_id", "bigint"), _field("purpose", "text"))
    cql = peer_table(topic, key, _envelope(topic, fields)).create_cql("peer_abc123")
    assert cql == (
        'CREATE TABLE IF NOT EXISTS "peer_abc123"."crm_consents" ("customer_id" bigint, "purpose" text, '
        '"granted" boolean, PRIMARY KEY (("customer_id", "purpose")))'
    )


def test_peer_table_quotes_column_names_that_are_cql_keywords() -> None:
    topic = "crm.public.scv_signal"
    fields = [_field("id", "text"), _field("type", "text"), _field("data", "text", nullable=True)]
    cql = peer_table(topic, _key(topic, _field("id", "text")), _envelope(topic, fields)).create_cql("ks")
    assert '"type" text' in cql


def test_peer_table_refuses_a_field_the_connector_cannot_write_naming_topic_and_field() -> None:
    fields = [_field("customer_id", "bigint"), _field("location", "point")]
    with pytest.raises(PeerSchemaError, match=r"crm\.public\.customers: field 'location' has a record"):
        peer_table(CUSTOMERS, _key(CUSTOMERS, _field("customer_id", "bigint")), _envelope(CUSTOMERS, fields))


def test_peer_table_refuses_a_key_field_missing_from_the_row() -> None:
    key = _key(CUSTOMERS, _field("customer_ref", "bigint"))
    with pytest.raises(PeerSchemaError, match="customer_ref"):
        peer_table(CUSTOMERS, key, _envelope(CUSTOMERS, CUSTOMER_FIELDS))


@pytest.mark.parametrize(
    ("avro", "expected"),
    [
        ({"type": "long", "connect.name": "org.apache.kafka.connect.data.Timestamp"}, "timestamp"),
        ({"type": "int", "logicalType": "date"}, "date"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}, "decimal"),
        ({"type": "int", "connect.type": "int8"}, "tinyint"),
        ("bytes", "blob"),
        ({"type": "enum", "name": "Channel", "symbols": ["web", "app"]}, "text"),
        ({"type": "map", "values": "long"}, "map<text, bigint>"),
        (["null", {"type": "array", "items": ["null", "double"]}], "list<double>"),
    ],
)
def test_cql_type_follows_the_connect_type_the_converter_reads(avro: Any, expected: str) -> None:
    assert cql_type(avro) == expected


def test_table_name_routes_source_schema_table_to_source_table() -> None:
    assert table_name("care.public.interactions") == "care_interactions"
    assert table_name("not-a-change-topic") == "not_a_change_topic"


STORE = StoreSettings(contact_points=["127.0.0.1"], port=9042, consistency="local_quorum")


def test_sink_config_unwraps_routes_and_reads_from_the_start() -> None:
    config = sink_config(
        ["crm.public.customers", "core.public.accounts"],
        keyspace="peer_abc123",
        store=STORE,
        registry_url="http://127.0.0.1:8080/apis/registry/v2",
        tasks=2,
    )
    assert config["connector.class"] == SINK_CLASS
    assert config["tasks.max"] == "2"
    assert config["topics"] == "crm.public.customers,core.public.accounts"
    assert config["transforms"] == "unwrap,route"
    assert config["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    assert config["transforms.unwrap.delete.tombstone.handling.mode"] == "tombstone"
    assert config["consumer.override.auto.offset.reset"] == "earliest"
    assert config["scylladb.table.manage.enabled"] == "false"
    assert config["scylladb.keyspace"] == "peer_abc123"
    assert config["scylladb.port"] == "9042"
    assert config["scylladb.consistency.level"] == "LOCAL_QUORUM"


def test_sink_config_reads_records_with_the_converter_settings_the_stack_writes_them_with() -> None:
    config = sink_config(["crm.public.customers"], keyspace="k", store=STORE, registry_url="http://r/v2")
    for role in ("key", "value"):
        assert config[f"{role}.converter"] == "io.apicurio.registry.utils.converter.AvroConverter"
        assert config[f"{role}.converter.apicurio.registry.url"] == "http://r/v2"
        assert config[f"{role}.converter.apicurio.registry.as-confluent"] == "true"
        assert config[f"{role}.converter.apicurio.registry.use-id"] == "contentId"
        assert config[f"{role}.converter.apicurio.registry.headers.enabled"] == "false"


def test_sink_config_refuses_an_empty_topic_list() -> None:
    with pytest.raises(ValueError, match="at least one topic"):
        sink_config([], keyspace="k", store=STORE, registry_url="http://r/v2")


STACK_PROPERTIES = (
    "bootstrap.servers=127.0.0.1:9092\ngroup.id=scv-connect\nlisteners=http://127.0.0.1:8083\n"
    "plugin.path=/a,/b\nconfig.storage.topic=scv-connect-configs\noffset.storage.topic=scv-connect-offsets\n"
    "status.storage.topic=scv-connect-status\nproducer.linger.ms=10\n"
    "connector.client.config.override.policy=None\n"
)


def test_worker_properties_make_a_separate_connect_cluster_on_its_own_port() -> None:
    names = PeerNames("abc123")
    values = worker_properties(
        STACK_PROPERTIES, names, host="127.0.0.1", rest_port=8093, plugin_path=[Path("/p"), Path("/d")]
    )
    assert values["group.id"] == "scv-bench-peer-abc123"
    assert values["listeners"] == "http://127.0.0.1:8093"
    assert values["rest.advertised.port"] == "8093"
    assert values["plugin.path"] == "/p,/d"
    assert (
        values["config.storage.topic"],
        values["offset.storage.topic"],
        values["status.storage.topic"],
    ) == (names.internal_topics)
    # The stack's own settings are kept; the override policy lets the sink set its consumer's reset.
    assert values["bootstrap.servers"] == "127.0.0.1:9092"
    assert values["producer.linger.ms"] == "10"
    assert values["connector.client.config.override.policy"] == "All"


def test_peer_names_derive_from_one_run_id() -> None:
    names = PeerNames("abc123")
    assert names.consumer_group == "connect-scv-bench-peer-sink-abc123"
    assert names.keyspace == "peer_abc123"
    assert all(topic.startswith("scv-bench-peer-abc123-") for topic in names.internal_topics)


def test_parse_properties_skips_comments_and_keeps_equals_in_values() -> None:
    assert parse_properties("# c\n\na=b=c\n x = y \n") == {"a": "b=c", "x": "y"}


def test_plugin_path_entry_is_the_unpacked_folder_or_the_parent_of_a_jar_folder(tmp_path: Path) -> None:
    unpacked = tmp_path / "kafka-connect-scylladb"
    (unpacked / "lib").mkdir(parents=True)
    assert plugin_path_entry(unpacked) == unpacked
    jars = tmp_path / "plugins" / "scylladb"
    jars.mkdir(parents=True)
    assert plugin_path_entry(jars) == tmp_path / "plugins"


def test_backlog_committed_counts_only_records_of_the_backlog() -> None:
    backlog = {("t", 0): (10, 110), ("t", 1): (0, 50), ("u", 0): (0, 30)}
    # Partition 0 is past the backlog (later records not counted), 1 half way, u never committed.
    committed: dict[tuple[str, int], int | None] = {("t", 0): 500, ("t", 1): 25, ("u", 0): None}
    assert backlog_committed(backlog, committed) == 100 + 25


def test_median_window_rate_starts_at_the_first_progress() -> None:
    # 5 idle seconds (the connector starting), then 1,000 records a second.
    samples = [(float(t), 0) for t in range(5)] + [(float(5 + t), 1000 * (t + 1)) for t in range(20)]
    assert median_window_rate(samples) == pytest.approx(1000.0)


def test_median_window_rate_of_a_drain_shorter_than_a_window_is_its_average() -> None:
    assert median_window_rate([(0.0, 0), (1.0, 0), (2.0, 300), (3.0, 500)]) == pytest.approx(250.0)


def test_quantile_is_nearest_rank_and_nan_without_samples() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert (quantile(0.5, samples), quantile(0.99, samples)) == (50.0, 99.0)
    assert math.isnan(quantile(0.5, []))


def _result(freshness: bool = True) -> PeerResult:
    drain = PeerDrain(
        events=100_000, seconds=50.0, median_rate=2000.0, drained_after_s=58.0, cpu_seconds=40.0,
        peak_rss_bytes=900 << 20,
    )  # fmt: skip
    probe = ProbeResult(sent=300, seen=300, p50=0.35, p90=0.5, p99=0.9, max=1.2)
    return PeerResult(
        tasks=1,
        tables=("crm_customers",),
        drain=drain,
        freshness=PeerFreshness(1000.0, 990.0, 60.0, probe) if freshness else None,
    )


SCV = [
    ScvFigures("scv consume, 1 process", 1, 5000.0, 0.2, 0.6),
    ScvFigures("scv consume, 2 processes", 2, 8000.0, 0.25, 0.8),
]


def test_peer_section_compares_one_process_with_one_task() -> None:
    section = peer_section(_result(), SCV)
    assert section["ratio"] == pytest.approx(2.5)
    assert section["ratio_between"] == "scv consume, 1 process / kafka-connect-scylladb, 1 task"
    assert section["systems"]["kafka-connect-scylladb, 1 task"]["p99"] == pytest.approx(0.9)


def test_report_shows_both_systems_events_per_second_freshness_and_their_ratio() -> None:
    from tests.unit.test_bench_report import REPORT

    markdown = render_report(dict(REPORT, peer=peer_section(_result(), SCV)))
    assert "| scv consume, 1 process | 5,000 | 200 / 600 | histogram |" in markdown
    assert "| kafka-connect-scylladb, 1 task | 2,000 | 350 / 900 | probes |" in markdown
    assert (
        "**scv / peer events/s: 2.50** (scv consume, 1 process / kafka-connect-scylladb, 1 task)" in markdown
    )


def test_report_without_peer_freshness_says_it_was_not_measured() -> None:
    from tests.unit.test_bench_report import REPORT

    markdown = render_report(dict(REPORT, peer=peer_section(_result(freshness=False), SCV)))
    assert "| kafka-connect-scylladb, 1 task | 2,000 | n/a / n/a | not measured |" in markdown


def test_collection_fields_names_the_lists_the_connector_cannot_write_and_their_tables() -> None:
    table = peer_table(
        CUSTOMERS, _key(CUSTOMERS, _field("customer_id", "bigint")), _envelope(CUSTOMERS, CUSTOMER_FIELDS)
    )
    assert collection_fields([table]) == {"tags": ["crm_customers"]}
    assert "tags" not in dict(table.without({"tags"}).columns)


def test_a_table_cannot_leave_out_a_key_field() -> None:
    table = peer_table(
        CUSTOMERS, _key(CUSTOMERS, _field("customer_id", "bigint")), _envelope(CUSTOMERS, CUSTOMER_FIELDS)
    )
    with pytest.raises(PeerSchemaError, match="key field"):
        table.without({"customer_id"})


def test_sink_config_drops_excluded_fields_after_unwrapping_and_before_routing() -> None:
    config = sink_config(
        ["crm.public.customers"],
        keyspace="k",
        store=STORE,
        registry_url="http://r/v2",
        exclude_fields=["tags"],
    )
    assert config["transforms"] == "unwrap,drop,route"
    assert config["transforms.drop.type"] == "org.apache.kafka.connect.transforms.ReplaceField$Value"
    assert config["transforms.drop.exclude"] == "tags"


def test_failure_summary_keeps_the_exception_and_its_causes_without_frames() -> None:
    trace = (
        "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask\n"
        "\tat org.apache.kafka.connect.runtime.WorkerSinkTask.deliverMessages(WorkerSinkTask.java:659)\n"
        "Caused by: org.apache.kafka.connect.errors.DataException: field 'tags'\n"
        "\tat io.connect.scylladb.RecordConverter.convertStruct(RecordConverter.java:120)\n"
    )
    assert failure_summary(trace) == (
        "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask / "
        "Caused by: org.apache.kafka.connect.errors.DataException: field 'tags'"
    )


def test_report_names_the_fields_the_peer_left_out() -> None:
    result = _result()
    section = peer_section(
        PeerResult(result.tasks, result.tables, result.drain, result.freshness, ("crm_customers.tags",)), SCV
    )
    assert "leave out crm_customers.tags" in section["note"]


def test_probes_not_seen_count_as_slower_than_any_seen() -> None:
    # 9 of 115 seen (a sink 56 s behind): its p50 is not the 9 early probes' 56 s.
    result = ProbeResult.of(115, [56.0] * 9)
    assert math.isinf(result.p50)
    assert ProbeResult.of(4, [0.1, 0.2, 0.3, 0.4]).p50 == pytest.approx(0.2)


def test_report_shows_na_and_counts_probes_the_peer_never_applied() -> None:
    from tests.unit.test_bench_report import REPORT

    result = _result()
    assert result.freshness is not None
    late = PeerFreshness(1000.0, 1000.0, 30.0, ProbeResult.of(115, [56.0] * 9))
    section = peer_section(PeerResult(result.tasks, result.tables, result.drain, late), SCV)
    assert "| kafka-connect-scylladb, 1 task | 2,000 | n/a / n/a | probes |" in render_report(
        dict(REPORT, peer=section)
    )
    assert "106 probe rows were not in the peer's table" in section["note"]
