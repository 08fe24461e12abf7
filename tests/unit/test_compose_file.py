"""compose/docker-compose.yml would start cleanly from nothing: checked statically, because no
container engine runs where the tests do. Each rule is read off the file against the images it names
(their Dockerfiles and entrypoints, cited where a rule depends on them) and the code it runs.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from compose import container_view as view
from compose.generated import GENERATED_DIR
from compose.native import configs
from compose.native.services import REGISTRY_DB, REGISTRY_ROLE
from compose.versions import COMPOSE_DIR
from connectors.render import render_connector_config
from connectors.spec import SourceSpec, parse_spec
from scv.config.settings import Settings, StackSettings
from tests.schemas import compose_problems

README = COMPOSE_DIR.parent / "README.md"
SPEC = """
name: loyalty
database: {host: postgres, dbname: loyalty, user: cdc_loyalty, password_env: LOYALTY_PW}
tables:
  public.members: {kind: member, customer_key: customer_id}
"""

# What each healthcheck runs, and why that command exists in that image.
HEALTHCHECK_COMMANDS = {
    # docker-library/postgres: the server's client tools are installed with it.
    "postgres": "pg_isready",
    # apache/kafka unpacks Kafka's distribution at /opt/kafka (docker/jvm/Dockerfile).
    "kafka": "/opt/kafka/bin/kafka-broker-api-versions.sh",
    # Debezium's images start from fedora-minimal, whose curl their own build uses
    # (debezium/container-images kafka/*/Dockerfile: RUN curl -fSL ...).
    "connect": "curl",
    # Apicurio runs on Red Hat's openjdk runtime image: bash (its run-java.sh launcher), no HTTP client.
    "registry": "bash",
    # scylladb/scylla ships cqlsh; its entrypoint (dist/docker/scyllasetup.py) writes the cqlshrc.
    "scylla": "cqlsh",
    # prom/prometheus is built on prometheus/busybox: busybox wget.
    "prometheus": "wget",
    # grafana/grafana is built on Alpine: busybox wget.
    "grafana": "wget",
    # The project's image is python:*-slim (compose/Dockerfile): no curl, an interpreter.
    "replicator": "python",
    "api": "python",
    "exporter": "python",
}
# Services that run and stay up; the one-shots and the CLI do not restart.
LONG_RUNNING = {
    "postgres",
    "kafka",
    "connect",
    "registry",
    "scylla",
    "prometheus",
    "grafana",
    "replicator",
    "api",
    "exporter",
}
# Where each service keeps the data it must not lose with its container (its image's data folder).
DATA_PATHS = {
    "postgres": "/var/lib/postgresql/data",
    "kafka": str(view.KAFKA_LOG_DIR),
    "scylla": "/var/lib/scylla",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
}
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def _interpolate(text: str) -> str:
    """A value as compose resolves it with no variable set: defaults taken, required ones marked."""

    def resolve(match: re.Match[str]) -> str:
        op, arg = match.group("op"), match.group("arg")
        if op in (":-", "-"):
            return arg
        return f"<{match.group('name')}>"

    return _VAR.sub(resolve, text.replace("$$", "\0")).replace("\0", "$")


def _volumes(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax mount, sources interpolated."""
    mounts = []
    for entry in svc.get("volumes", []):
        parts = _interpolate(entry).split(":")
        mounts.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return mounts


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/"))


def _environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def _uses_scv_image(svc: dict[str, Any]) -> bool:
    return str(svc.get("image", "")).startswith("scv/scv:")


def _ports(svc: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each published port."""
    out = []
    for entry in svc.get("ports", []):
        ip, host, container = str(entry).split(":")
        out.append((ip, int(host), int(container)))
    return out


def _kafka_properties() -> dict[str, str]:
    text = (GENERATED_DIR / "kafka" / "server.properties").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def _settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    # Through pydantic-settings' own parsing, as a process with that environment reads it.
    for key in [k for k in os.environ if k.startswith("SCV_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SCV_CONFIG", "/nonexistent/scv.yaml")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def spec() -> SourceSpec:
    return parse_spec(SPEC, "loyalty.yaml")


# --- the file as a whole --------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_problems(compose) == []


def test_scv_services_share_one_image_and_build(services: dict[str, dict[str, Any]]) -> None:
    scv = {name: svc for name, svc in services.items() if _uses_scv_image(svc)}
    assert set(scv) == {"migrate", "replicator", "api", "scv", "exporter"}
    assert len({yaml.safe_dump(svc["build"]) for svc in scv.values()}) == 1
    assert all(svc["build"]["dockerfile"] == "compose/Dockerfile" for svc in scv.values())


def test_scv_image_tag_is_the_project_version(services: dict[str, dict[str, Any]]) -> None:
    from importlib.metadata import version

    assert services["replicator"]["image"] == f"scv/scv:{version('single-customer-view')}"


# --- start order: healthchecks and conditions -----------------------------------------------------


def test_depends_on_always_names_a_condition(services: dict[str, dict[str, Any]]) -> None:
    short = {name for name, svc in services.items() if isinstance(svc.get("depends_on"), list)}
    assert not short, f"{sorted(short)}: depends_on without conditions only waits for the container to start"
    for name, svc in services.items():
        for dep, rule in svc.get("depends_on", {}).items():
            assert rule.get("condition") in {"service_healthy", "service_completed_successfully"}, (name, dep)


def test_every_service_waited_on_as_healthy_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    waited = {
        dep
        for svc in services.values()
        for dep, rule in (svc.get("depends_on") or {}).items()
        if isinstance(rule, dict) and rule.get("condition") == "service_healthy"
    }
    # Every service with dependants is waited on; today that is all but the leaves.
    depended = {dep for svc in services.values() for dep in (svc.get("depends_on") or [])}
    assert depended <= waited | {"migrate"}
    assert {s for s in waited if "healthcheck" not in services[s]} == set()


def test_healthchecks_use_commands_their_images_ship(services: dict[str, dict[str, Any]]) -> None:
    used = {}
    for name, svc in services.items():
        if "healthcheck" not in svc:
            continue
        kind, *argv = svc["healthcheck"]["test"]
        if kind == "CMD-SHELL":
            words = [w for w in shlex.split(argv[0]) if "=" not in w]
            used[name] = words[0]
        else:
            assert kind == "CMD", name
            used[name] = argv[0]
    assert used == HEALTHCHECK_COMMANDS


def test_shell_variables_in_commands_are_escaped_from_compose(services: dict[str, dict[str, Any]]) -> None:
    # Compose interpolates $NAME in every value; a variable meant for the container's shell is $$NAME.
    for name, svc in services.items():
        texts = [*svc.get("command", []), *(svc.get("healthcheck", {}).get("test", []))]
        for text in texts:
            assert not re.search(r"(?<!\$)\$(?!\$)[{A-Za-z_]", str(text)), (name, text)


def test_postgres_healthcheck_probes_tcp_not_the_init_socket(services: dict[str, dict[str, Any]]) -> None:
    # On first boot the image runs /docker-entrypoint-initdb.d against a temporary server started with
    # listen_addresses='' (docker-library/postgres docker-entrypoint.sh, docker_temp_server_start):
    # only a TCP probe waits for the real server, after the registry's role and database exist.
    test = services["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert "--host=127.0.0.1" in test


def test_replicator_waits_for_a_successful_migrate(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["command"] == ["store", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["scylla"]["condition"] == "service_healthy"
    for name in ("replicator", "api", "scv"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_replicator_waits_for_what_it_reads_and_writes(services: dict[str, dict[str, Any]]) -> None:
    deps = services["replicator"]["depends_on"]
    assert {d for d, rule in deps.items() if rule["condition"] == "service_healthy"} == {
        "kafka",
        "registry",
        "scylla",
    }


def test_registry_waits_for_postgres_to_be_healthy(services: dict[str, dict[str, Any]]) -> None:
    assert services["registry"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_long_running_services_restart(services: dict[str, dict[str, Any]]) -> None:
    restarting = {name for name, svc in services.items() if svc.get("restart") == "unless-stopped"}
    assert restarting == LONG_RUNNING


def test_replicator_runs_one_consumer_group_member(services: dict[str, dict[str, Any]]) -> None:
    assert services["replicator"]["command"] == ["consume", "--processes", "1"]


# --- volumes and files ----------------------------------------------------------------------------


def test_every_named_volume_is_mounted(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    mounted = {src for svc in services.values() for src, _, _ in _volumes(svc) if not _is_bind(src)}
    assert set(compose["volumes"]) == mounted


def test_every_bind_mount_source_exists(services: dict[str, dict[str, Any]]) -> None:
    missing = [
        (name, src)
        for name, svc in services.items()
        for src, _, _ in _volumes(svc)
        if _is_bind(src) and not (COMPOSE_DIR / src).exists()
    ]
    assert not missing


def test_config_mounts_are_read_only(services: dict[str, dict[str, Any]]) -> None:
    writable = [
        (n, s) for n, svc in services.items() for s, _, mode in _volumes(svc) if _is_bind(s) and mode != "ro"
    ]
    assert not writable


@pytest.mark.parametrize(("service", "path"), sorted(DATA_PATHS.items()))
def test_data_lives_on_a_named_volume(services: dict[str, dict[str, Any]], service: str, path: str) -> None:
    named = {target for src, target, _ in _volumes(services[service]) if not _is_bind(src)}
    assert path in named


def test_kafka_log_dirs_live_on_the_kafka_data_volume(services: dict[str, dict[str, Any]]) -> None:
    # Without it, topics and Connect's offsets live in the image's default /tmp log dir and vanish
    # with the container. The broker must run the file whose log.dirs is the volume.
    kafka = services["kafka"]
    mounts = {target: src for src, target, _ in _volumes(kafka)}
    (config,) = set(re.findall(r"kafka-server-start\.sh (\S+)", " ".join(kafka.get("command", []))))
    assert mounts.get(str(Path(config).parent)) == "./config/generated/kafka"
    log_dirs = _kafka_properties()["log.dirs"]
    assert mounts.get(log_dirs) == "kafka-data"


def test_kafka_runs_the_generated_server_properties(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert ("./config/generated/kafka", "/etc/scv/kafka", "ro") in _volumes(kafka)
    script = kafka["command"][-1]
    assert "kafka-storage.sh format --ignore-formatted" in script
    assert script.count("/etc/scv/kafka/server.properties") == 2
    # The image's env-to-properties machinery must not be in play: no KAFKA_* config variables.
    assert set(_environment(kafka)) == {"KAFKA_CLUSTER_ID", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS"}


# --- Kafka listeners: each side resolves what it is sent to ---------------------------------------


def test_kafka_advertises_a_listener_each_side_resolves(services: dict[str, dict[str, Any]]) -> None:
    props = _kafka_properties()
    bound = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+)://[^:,]*:(\d+)", props["listeners"])}
    published = {host_port: container for ip, host_port, container in _ports(services["kafka"])}
    sides = set()
    for name, host, port in re.findall(r"(\w+)://([^:,]+):(\d+)", props["advertised.listeners"]):
        if host in services:
            # A container resolves the service name and reaches the bound port directly.
            assert int(port) == bound[name], name
            sides.add("containers")
        else:
            # The host resolves loopback and reaches the port compose publishes to this listener.
            assert host in {"127.0.0.1", "localhost"}, host
            assert published.get(int(port)) == bound[name], name
            sides.add("host")
    assert sides == {"containers", "host"}


def test_clients_bootstrap_on_their_own_sides_listener(services: dict[str, dict[str, Any]]) -> None:
    advertised = _kafka_properties()["advertised.listeners"]
    # The host-side CLI with default settings (bootstrap on the stack's host and Kafka port) ...
    st = StackSettings()
    assert f"HOST://{st.host}:{st.kafka_port}" in advertised
    # ... and every container.
    container_bootstrap = view.container_env()["SCV_KAFKA__BOOTSTRAP_SERVERS"]
    assert f"PLAINTEXT://{container_bootstrap}" in advertised
    connect = (GENERATED_DIR / "connect" / "connect-distributed.properties").read_text()
    assert f"bootstrap.servers={container_bootstrap}\n" in connect


# --- Connect: the worker's view, secrets, settings that take effect -------------------------------


def test_connect_runs_the_generated_worker_properties(services: dict[str, dict[str, Any]]) -> None:
    connect = services["connect"]
    assert connect["command"] == [
        "/kafka/bin/connect-distributed.sh",
        "/etc/scv/connect/connect-distributed.properties",
    ]
    assert ("./config/generated/connect", "/etc/scv/connect", "ro") in _volumes(connect)


def test_connect_env_sets_only_variables_its_command_reads(services: dict[str, dict[str, Any]]) -> None:
    # With its own command, Debezium's entrypoint skips the CONNECT_*/BOOTSTRAP_SERVERS/..._TOPIC
    # translation: such variables would do nothing (as *_STORAGE_REPLICATION_FACTOR did before).
    # kafka-run-class.sh reads these two.
    assert set(_environment(services["connect"])) == {"KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS"}


def _onboarding_settings(services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of the container that runs `scv sources add`, read from its environment."""
    (onboarding,) = [
        n for n, svc in services.items() if _uses_scv_image(svc) and "tools" in svc.get("profiles", [])
    ]
    env = {k: v for k, v in _environment(services[onboarding]).items() if not v.startswith("${")}
    return _settings_from_env(monkeypatch, env)


def test_connector_secret_reference_resolves_inside_connect(
    services: dict[str, dict[str, Any]], spec: SourceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _onboarding_settings(services, monkeypatch)
    config = render_connector_config(spec, settings.kafka, settings.connect)
    secret = Path(config["database.password"].removeprefix("${file:").rsplit(":", 1)[0])
    folder = str(secret.parent)
    connect_mounts = {target: src for src, target, _ in _volumes(services["connect"])}
    writer_mounts = {target: (src, mode) for src, target, mode in _volumes(services["scv"])}
    # The worker reads the file from a volume ...
    assert connect_mounts.get(folder) == "connect-secrets"
    # ... that the service running `scv sources add` mounts writable at the same path, where its
    # settings write it.
    assert writer_mounts.get(folder) == ("connect-secrets", "rw")
    assert settings.connect.secrets_dir == Path(folder)


def test_connector_registry_url_names_the_registry_service(
    services: dict[str, dict[str, Any]], spec: SourceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _onboarding_settings(services, monkeypatch)
    url = render_connector_config(spec, settings.kafka, settings.connect)[
        "value.converter.apicurio.registry.url"
    ]
    match = re.match(r"http://([^:/]+):(\d+)/apis/registry/v2$", url)
    assert match, url
    assert match.group(1) == view.REGISTRY
    assert int(match.group(2)) == StackSettings().registry_port == _ports(services["registry"])[0][2]


def test_host_env_renders_the_connector_config_a_container_renders(
    monkeypatch: pytest.MonkeyPatch, spec: SourceSpec
) -> None:
    lines = (COMPOSE_DIR / "host.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    host = _settings_from_env(monkeypatch, env)
    container = view.container_settings()
    assert render_connector_config(spec, host.kafka, host.connect) == render_connector_config(
        spec, container.kafka, container.connect
    )


# --- the scv containers' settings -----------------------------------------------------------------


def test_scv_containers_run_with_the_container_view(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert {str(k): str(v) for k, v in compose["x-scv-environment"].items()} == view.container_env()
    for name, svc in services.items():
        if _uses_scv_image(svc):
            assert view.container_env().items() <= _environment(svc).items(), name


def test_container_env_is_read_as_the_container_view(monkeypatch: pytest.MonkeyPatch) -> None:
    read = _settings_from_env(monkeypatch, view.container_env())
    assert read.model_dump(exclude={"stack"}) == view.container_settings().model_dump(exclude={"stack"})


def test_scv_environment_names_existing_settings(services: dict[str, dict[str, Any]]) -> None:
    # pydantic-settings ignores an SCV_ variable that names no field: a typo would do nothing.
    for name, svc in services.items():
        for key in (k for k in _environment(svc) if k.startswith("SCV_")):
            section, _, field = key.removeprefix("SCV_").lower().partition("__")
            if not field:
                assert section in Settings.model_fields, (name, key)
                continue
            model = Settings.model_fields[section].annotation
            assert model is not None, (name, key)
            assert field in model.model_fields, (name, key)


# --- secrets and credentials ----------------------------------------------------------------------


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_every_required_variable_is_documented(compose: dict[str, Any]) -> None:
    text = README.read_text()
    section = text.split("## Run with Docker Compose", 1)[1].split("\n## ", 1)[0]
    required = {
        m.group("name")
        for value in _strings(compose)
        for m in _VAR.finditer(value.replace("$$", ""))
        if m.group("op") in (":?", "?")
    }
    assert required == {"POSTGRES_PASSWORD", "APICURIO_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    assert {v for v in required if f"`{v}`" not in section} == set()


def test_no_secret_has_a_default(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for key, value in _environment(svc).items():
            if re.search(r"PASSWORD|_SECRET$|_TOKEN$", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (name, key)


def test_grafana_has_no_default_admin_password(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["grafana"])
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_grafana_keeps_its_data_on_a_volume(services: dict[str, dict[str, Any]]) -> None:
    assert ("grafana-data", "/var/lib/grafana", "rw") in _volumes(services["grafana"])


def test_grafana_reads_the_compose_prometheus(services: dict[str, dict[str, Any]]) -> None:
    datasource = yaml.safe_load(
        (COMPOSE_DIR / "config/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert (
        datasource["datasources"][0]["url"] == f"http://{view.PROMETHEUS}:{StackSettings().prometheus_port}"
    )


# --- ports and settings shared with the native stack ----------------------------------------------


def test_published_ports_bind_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    assert {ip for svc in services.values() for ip, _, _ in _ports(svc)} == {"127.0.0.1"}


def test_container_ports_are_the_native_ports(services: dict[str, dict[str, Any]]) -> None:
    st = StackSettings()
    expected = {
        "postgres": (st.postgres_port, st.postgres_port),
        "kafka": (st.kafka_port, view.KAFKA_HOST_LISTENER_PORT),
        "connect": (st.connect_port, st.connect_port),
        "registry": (st.registry_port, st.registry_port),
        "scylla": (st.cql_port, st.cql_port),
        "prometheus": (st.prometheus_port, st.prometheus_port),
    }
    for name, (host, container) in expected.items():
        assert ("127.0.0.1", host, container) in _ports(services[name]), name


def test_postgres_options_match_the_native_renderer(services: dict[str, dict[str, Any]]) -> None:
    command = services["postgres"]["command"]
    assert command[0] == "postgres"
    options = dict(arg.split("=", 1) for arg in command[2::2])
    native = configs.postgres_options(Settings(), Path("/sockets"), Path("/hba"))
    # Those that place files and listeners are the image's business.
    placement = {
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "hba_file",
        "logging_collector",
        "log_line_prefix",
    }
    assert options == {k: v for k, v in native.items() if k not in placement}


def test_registry_environment_matches_the_native_properties(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["registry"])
    native = configs.registry_properties(Settings(), "jdbc:unused", REGISTRY_ROLE, Path("/work"))
    # Placement differs per shape: the listener (the image binds 0.0.0.0:8080), the database address
    # and the scratch folders.
    placement = {"quarkus.http.host", "quarkus.http.port", "apicurio.datasource.url"}
    for key, value in native.items():
        if key in placement or value == "/work":
            continue
        assert env[re.sub(r"[^A-Za-z0-9]", "_", key).upper()] == value, key
    assert env["APICURIO_DATASOURCE_URL"] == f"jdbc:postgresql://{view.POSTGRES}:5432/{REGISTRY_DB}"


def test_jvm_heaps_match_the_native_stack(services: dict[str, dict[str, Any]]) -> None:
    st = StackSettings()
    # Kafka and Connect run with fixed heaps natively (compose/native/services.py _jvm_options).
    assert (
        _environment(services["kafka"])["KAFKA_HEAP_OPTS"]
        == f"-Xms{st.kafka_heap_mb}m -Xmx{st.kafka_heap_mb}m"
    )
    assert (
        _environment(services["connect"])["KAFKA_HEAP_OPTS"]
        == f"-Xms{st.connect_heap_mb}m -Xmx{st.connect_heap_mb}m"
    )
    assert _environment(services["registry"])["JAVA_OPTS_APPEND"] == f"-Xms128m -Xmx{st.registry_heap_mb}m"


def test_postgres_authenticates_every_tcp_client(services: dict[str, dict[str, Any]]) -> None:
    # The image's initdb would trust loopback TCP inside the container; no trust over TCP, as natively.
    args = services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    assert "--auth-host=scram-sha-256" in args
