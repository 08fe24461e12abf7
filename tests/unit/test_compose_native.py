"""The native stack's pure parts: rendered configs, versions, bundle cache keys, stop order."""

from __future__ import annotations

from pathlib import Path

import yaml

from compose.native import configs
from compose.native.install import BUNDLES, bundle_dir
from compose.native.paths import StackPaths
from compose.native.services import SERVICES, single_user_argv
from compose.native.stack import _STOP_PHASES
from compose.versions import load_versions
from scv.config.settings import Settings, StackSettings


def _settings(tmp_path: Path) -> Settings:
    stack = StackSettings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", kafka_port=19092)
    return Settings(stack=stack)


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_listeners_follow_stack_ports(tmp_path: Path) -> None:
    props = _props(configs.kafka_server_properties(_settings(tmp_path), tmp_path / "log"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["offsets.topic.replication.factor"] == "1"


def test_connect_worker_resolves_secrets_through_config_providers(tmp_path: Path) -> None:
    props = _props(configs.connect_properties(_settings(tmp_path), [tmp_path / "a", tmp_path / "b"]))
    assert props["config.providers"] == "file,env,dir"
    assert (
        props["config.providers.file.class"] == "org.apache.kafka.common.config.provider.FileConfigProvider"
    )
    assert props["plugin.path"] == f"{tmp_path / 'a'},{tmp_path / 'b'}"
    assert props["bootstrap.servers"] == "127.0.0.1:19092"


def test_connect_worker_tunes_the_producer_and_allows_no_client_overrides(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    props = _props(configs.connect_properties(settings, [tmp_path / "a"]))
    assert props["connector.client.config.override.policy"] == "None"
    assert props["producer.linger.ms"] == "10"
    assert props["producer.max.request.size"] == str(settings.kafka.max_record_bytes)


def test_connect_file_config_provider_reads_only_the_secrets_folder(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    props = _props(configs.connect_properties(settings, [tmp_path / "a"]))
    assert props["config.providers.file.param.allowed.paths"] == str(settings.connect.worker_secrets_dir)
    assert props["config.providers.dir.param.allowed.paths"] == str(settings.connect.worker_secrets_dir)


def test_kafka_accepts_the_maximum_record_with_room_for_framing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    props = _props(configs.kafka_server_properties(settings, tmp_path / "log"))
    assert int(props["message.max.bytes"]) > settings.kafka.max_record_bytes


def test_pg_hba_trusts_nobody_over_tcp() -> None:
    rules = [line.split() for line in configs.pg_hba_conf().splitlines() if line and not line.startswith("#")]
    assert all(rule[-1] == "scram-sha-256" for rule in rules if rule[0] == "host")
    # Only the superuser on the Unix socket, which only the server's OS user may open.
    assert [rule for rule in rules if rule[-1] == "trust"] == [["local", "all", "postgres", "trust"]]


def test_postgres_socket_is_for_its_own_user_only(tmp_path: Path) -> None:
    options = configs.postgres_options(_settings(tmp_path), tmp_path / "sock", tmp_path / "hba")
    assert options["unix_socket_permissions"] == "0700"


def test_single_user_mode_recovers_with_the_servers_wal_level(tmp_path: Path) -> None:
    # After an unclean stop, single-user mode replays WAL first; with logical slots present that
    # refuses to run at the default wal_level=replica (the stack then never came up again).
    options = configs.postgres_options(_settings(tmp_path), tmp_path / "sock", tmp_path / "hba")
    argv = single_user_argv(Path("/bin"), tmp_path / "data", options)
    assert argv[:4] == ["/bin/postgres", "--single", "-D", str(tmp_path / "data")]
    assert argv[-1] == "postgres"
    pairs = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-c")
    assert pairs["wal_level"] == "logical"
    assert pairs["max_replication_slots"] == options["max_replication_slots"]


def test_pgpass_escapes_the_password_and_names_the_superuser(tmp_path: Path) -> None:
    line = configs.pgpass(_settings(tmp_path), "a:b\\c").splitlines()[0]
    assert line == "127.0.0.1:5432:*:postgres:a\\:b\\\\c"


def test_cassandra_yaml_is_valid_yaml_bound_to_loopback(tmp_path: Path) -> None:
    config = yaml.safe_load(configs.cassandra_yaml(_settings(tmp_path), tmp_path))
    assert config["listen_address"] == config["rpc_address"] == "127.0.0.1"
    assert config["native_transport_port"] == 9042
    assert config["num_tokens"] == 16


def test_prometheus_targets_cover_the_exporter_and_every_jmx_agent(tmp_path: Path) -> None:
    targets = configs.prometheus_targets(_settings(tmp_path))
    # The exporter keeps replicator.json: the stack must not overwrite its list at every start.
    assert "replicator.json" not in targets
    exporter = yaml.safe_load(targets["exporter.json"])
    assert exporter[0]["targets"] == ["127.0.0.1:9390"]
    jmx = {group["labels"]["service"]: group["targets"] for group in yaml.safe_load(targets["jmx.json"])}
    assert jmx == {
        "kafka": ["127.0.0.1:9404"],
        "connect": ["127.0.0.1:9405"],
        "cassandra": ["127.0.0.1:9406"],
    }


def test_exporter_gets_the_stack_sections_without_secrets(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    env = configs.exporter_environment(settings, tmp_path / "replicator.json")
    assert yaml.safe_load(env["SCV_KAFKA"])["bootstrap_servers"] == "127.0.0.1:19092"
    assert yaml.safe_load(env["SCV_EXPORTER"])["replicator_targets_file"] == str(tmp_path / "replicator.json")
    assert "SCV_POSTGRES" not in env
    # Read back as the exporter reads its settings.
    restored = Settings.model_validate(
        {
            k.removeprefix("SCV_").lower(): yaml.safe_load(v)
            for k, v in env.items()
            if k not in ("SCV_LOG_FORMAT", "SCV_LOG_LEVEL")
        }
    )
    assert restored.connect.secrets_dir == settings.connect.secrets_dir


def test_bundle_dir_changes_when_a_version_changes(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path / "data", tmp_path / "cache")
    versions = load_versions()
    bumped = versions.model_copy(update={"kafka": "0.0.0"})
    kafka = next(b for b in BUNDLES if b.name == "kafka")
    assert bundle_dir(paths, versions, kafka) != bundle_dir(paths, bumped, kafka)


def test_every_service_is_stopped_by_down() -> None:
    stopped = [name for phase in _STOP_PHASES for name in phase]
    assert sorted(stopped) == sorted(s.name for s in SERVICES)


def test_services_are_listed_after_their_dependencies() -> None:
    seen: set[str] = set()
    for svc in SERVICES:
        assert set(svc.depends_on) <= seen, svc.name
        seen.add(svc.name)


def test_jmx_agent_runs_with_a_copy_of_the_services_rules(tmp_path: Path) -> None:
    from compose.native.services import Context, _jmx_agent
    from compose.versions import COMPOSE_DIR

    settings = _settings(tmp_path)
    ctx = Context(
        settings, StackPaths.of(settings.stack), load_versions(), {"jmx-exporter": tmp_path / "jmx"}
    )
    flag = _jmx_agent(ctx, "connect", 9405)
    rules = tmp_path / "data" / "connect" / "jmx-exporter.yml"
    assert flag == f"-javaagent:{tmp_path / 'jmx' / 'jmx_prometheus_javaagent.jar'}=127.0.0.1:9405:{rules}"
    assert rules.read_text() == (COMPOSE_DIR / "config" / "jmx" / "connect.yml").read_text()


def test_connect_starts_with_its_secrets_folder_on_a_fresh_machine(tmp_path: Path) -> None:
    # Kafka Connect exits at start when a path its config providers may read does not exist.
    from compose.native.services import Context, _prepare_connect

    settings = _settings(tmp_path)
    names = ("debezium-postgres", "apicurio-converter", "jmx-exporter", "kafka")
    bundles = {name: tmp_path / name for name in names}
    ctx = Context(settings, StackPaths.of(settings.stack), load_versions(), bundles)
    _prepare_connect(ctx)
    secrets = settings.connect.worker_secrets_dir
    assert secrets is not None
    assert secrets.is_dir()
    assert secrets.stat().st_mode & 0o777 == 0o700
    props = _props((tmp_path / "data" / "connect" / "config" / "connect-distributed.properties").read_text())
    assert props["config.providers.file.param.allowed.paths"] == str(secrets)
