"""The rendered Debezium config: exact keys, names derived from the spec, and no secret in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.render import LiveChoices, converter_config, render_connector_config
from connectors.spec import SourceSpec, parse_spec
from scv.config.settings import ConnectSettings, Settings

SPEC = """
name: loyalty
database: {host: db.internal, port: 5433, dbname: loyalty, user: cdc_loyalty, password_env: LOYALTY_PW}
tables:
  public.members:
    kind: member
    customer_key: customer_id
    hash_columns: [email]
    mask_columns: [phone]
    exclude_columns: [notes]
  public.rewards:
    kind: reward
    customer_key: {via: public.members, column: member_id}
"""
SECRETS = Path("/run/connect-secrets")
SECRET = SECRETS / "loyalty.properties"


@pytest.fixture
def settings() -> Settings:
    # The worker's view of the secrets folder, not this process's: what Connect reads.
    return Settings(connect=ConnectSettings(secrets_dir=Path("/tmp/unused"), worker_secrets_dir=SECRETS))


@pytest.fixture
def spec() -> SourceSpec:
    return parse_spec(SPEC, "loyalty.yaml")


def test_render_sets_debezium_essentials(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["plugin.name"] == "pgoutput"
    assert config["topic.prefix"] == "loyalty"
    assert config["name"] == "scv-loyalty"
    assert config["slot.name"] == "scv_loyalty"
    assert config["publication.name"] == "scv_loyalty"
    assert config["database.hostname"] == "db.internal"
    assert config["database.port"] == "5433"
    assert config["time.precision.mode"] == "adaptive_time_microseconds"
    assert config["skipped.operations"] == "none"
    assert config["tombstones.on.delete"] == "true"
    assert config["snapshot.mode"] == "initial"
    # Producer tuning is the worker's (compose/native/configs.py): the override policy is None.
    assert not [key for key in config if key.startswith(("producer.override.", "consumer.override."))]
    # Truncate events have no key; a compacted topic would reject them and kill the task.
    assert config["topic.creation.default.cleanup.policy"] == "delete"
    assert config["topic.creation.default.partitions"] == str(settings.kafka.topic_partitions)
    assert config["topic.creation.default.replication.factor"] == str(settings.kafka.replication_factor)
    assert all(isinstance(value, str) for value in config.values())


def test_render_makes_debezium_carry_every_legal_value(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    # NaN/Infinity and MONEY's full range survive only as text; intervals exactly only as ISO 8601.
    assert config["decimal.handling.mode"] == "string"
    assert config["interval.handling.mode"] == "string"
    # Otherwise box, tsquery, multiranges, ... vanish from the record, and `name` streams as NULL.
    assert config["include.unknown.datatypes"] == "true"
    # The replicator tells NUMERIC text from text, and an unknown type's bytes from bytea, by it.
    assert config["datatype.propagate.source.type"] == ".+"


def test_render_includes_spec_tables_and_signal_table(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["table.include.list"] == r"public\.members,public\.rewards,public\.scv_signal"
    assert config["signal.data.collection"] == "public.scv_signal"


def test_render_heartbeat_upserts_the_heartbeat_table(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["heartbeat.interval.ms"] == "10000"
    query = config["heartbeat.action.query"]
    assert query.startswith(
        'INSERT INTO "public"."scv_heartbeat" (source, beat_at) VALUES (\'loyalty\', now())'
    )
    assert "ON CONFLICT (source) DO UPDATE" in query


def test_render_omits_heartbeat_query_when_table_missing(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(
        spec, settings.kafka, settings.connect, choices=LiveChoices(heartbeat_action=False)
    )
    assert "heartbeat.action.query" not in config
    assert config["heartbeat.interval.ms"] == "10000"


def test_render_publication_mode_follows_live_choice(spec: SourceSpec, settings: Settings) -> None:
    default = render_connector_config(spec, settings.kafka, settings.connect)
    filtered = render_connector_config(
        spec, settings.kafka, settings.connect, choices=LiveChoices(publication_mode="filtered")
    )
    assert default["publication.autocreate.mode"] == "disabled"
    assert filtered["publication.autocreate.mode"] == "filtered"


def test_render_password_is_a_file_provider_reference(
    spec: SourceSpec, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_PW", "s3cr3t-value-never-rendered")
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["database.password"] == f"${{file:{SECRET}:password}}"
    assert not any("s3cr3t-value-never-rendered" in f"{k}={v}" for k, v in config.items())


def test_render_masks_and_hashes_pii_columns(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["column.mask.hash.SHA-256.with.salt.scv"] == r"public\.members\.email"
    assert config["column.mask.with.8.chars"] == r"public\.members\.phone"
    assert config["column.exclude.list"] == r"public\.members\.notes"
    assert "column.include.list" not in config


def test_render_mixed_include_and_exclude_becomes_one_include_list(settings: Settings) -> None:
    spec = parse_spec(
        SPEC.replace("    exclude_columns: [notes]\n", "    exclude_columns: [notes, memo]\n")
        + "    include_columns: [reward_id, points]\n",
        "loyalty.yaml",
    )
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert "column.exclude.list" not in config
    entries = config["column.include.list"].split(",")
    assert r"public\.members\.(?!(?:notes|memo)$).+" in entries
    # The via column is kept even though the DBA did not list it: without it no row can be placed.
    assert {r"public\.rewards\.reward_id", r"public\.rewards\.points", r"public\.rewards\.member_id"} <= set(
        entries
    )
    assert r"public\.scv_signal\..+" in entries


def test_render_topic_partitions_from_spec_override_settings(settings: Settings) -> None:
    spec = parse_spec(SPEC + "topic_partitions: 3\n", "loyalty.yaml")
    config = render_connector_config(spec, settings.kafka, settings.connect)
    assert config["topic.creation.default.partitions"] == "3"


def test_render_converters_write_confluent_wire_format(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    for role in ("key", "value"):
        assert config[f"{role}.converter"] == "io.apicurio.registry.utils.converter.AvroConverter"
        assert {k: v for k, v in config.items() if k.startswith(f"{role}.converter")} == converter_config(
            settings.connect.worker_registry_url, role
        )
    assert config["value.converter.apicurio.registry.headers.enabled"] == "false"


def test_render_converters_survive_a_registry_outage(spec: SourceSpec, settings: Settings) -> None:
    config = render_connector_config(spec, settings.kafka, settings.connect)
    for role in ("key", "value"):
        # A cached schema whose periodic re-check fails is kept (not a FAILED task)...
        assert config[f"{role}.converter.apicurio.registry.fault-tolerant-refresh"] == "true"
        # ...and an uncached one is asked for again for two minutes.
        retries = int(config[f"{role}.converter.apicurio.registry.retry-count"])
        backoff_ms = int(config[f"{role}.converter.apicurio.registry.retry-backoff-ms"])
        assert retries * backoff_ms >= 120_000
