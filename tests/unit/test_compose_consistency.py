"""docker-compose.yml agrees with the native stack by construction: same pinned versions, same default
ports, a counterpart for every native service, the same Prometheus config file."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from compose.native.services import SERVICES
from compose.versions import COMPOSE_DIR, load_versions
from scv.config.settings import ConsumerSettings, ExporterSettings, StackSettings


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    svc = compose["services"][name]
    assert isinstance(svc, dict)
    return svc


def _host_ports(svc: dict[str, Any]) -> set[int]:
    # "127.0.0.1:5432:5432" -> 5432 (the host side, which clients with default settings reach).
    return {int(str(p).split(":")[-2]) for p in svc.get("ports", [])}


def test_image_tags_match_pinned_versions(compose: dict[str, Any]) -> None:
    v = load_versions()
    expected = {
        "postgres": f"postgres:{v.postgres_image}",
        "kafka": f"apache/kafka:{v.kafka}",
        "registry": f"apicurio/apicurio-registry:{v.apicurio}",
        "scylla": f"scylladb/scylla:{v.scylla}",
        "prometheus": f"prom/prometheus:v{v.prometheus}",
        "grafana": f"grafana/grafana:{v.grafana}",
    }
    for name, image in expected.items():
        assert _service(compose, name)["image"] == image, name


def test_postgres_image_has_the_native_major_version() -> None:
    v = load_versions()
    assert v.postgres_image.split(".")[0] == v.postgres


def test_connect_build_args_match_pinned_versions(compose: dict[str, Any]) -> None:
    v = load_versions()
    connect = _service(compose, "connect")
    assert connect["build"]["args"] == {
        "DEBEZIUM_VERSION": v.debezium,
        "APICURIO_CONVERTER_VERSION": v.apicurio_converter,
        "MAVEN_DEPENDENCY_PLUGIN_VERSION": v.maven_dependency_plugin,
    }
    assert connect["image"].endswith(f":{v.debezium}")


def test_replicator_build_uses_pinned_python(compose: dict[str, Any]) -> None:
    assert _service(compose, "replicator")["build"]["args"]["PYTHON_VERSION"] == load_versions().python


def test_host_ports_match_settings_defaults(compose: dict[str, Any]) -> None:
    st = StackSettings()
    expected = {
        "postgres": st.postgres_port,
        "kafka": st.kafka_port,
        "connect": st.connect_port,
        "registry": st.registry_port,
        "scylla": st.cql_port,
        "prometheus": st.prometheus_port,
        "replicator": ConsumerSettings().metrics_port,
        "exporter": ExporterSettings().port,
    }
    for name, port in expected.items():
        assert port in _host_ports(_service(compose, name)), name


def test_every_native_service_has_a_compose_counterpart(compose: dict[str, Any]) -> None:
    missing = {s.name: s.compose_service for s in SERVICES if s.compose_service not in compose["services"]}
    assert not missing


def test_prometheus_config_is_the_file_the_native_stack_uses(compose: dict[str, Any]) -> None:
    volumes = _service(compose, "prometheus")["volumes"]
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./config/prometheus-rules:/etc/prometheus/rules:ro" in volumes
    config = yaml.safe_load((COMPOSE_DIR / "config" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"prometheus", "scv-replicator", "scv-exporter", "jmx"}
    assert config["rule_files"] == ["rules/*.yml"]


def test_every_scrape_job_has_compose_targets() -> None:
    from compose.generated import GENERATED_DIR

    config = yaml.safe_load((COMPOSE_DIR / "config" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for sd in job["file_sd_configs"]:
            for name in sd["files"]:
                path = GENERATED_DIR / "prometheus" / name
                assert path.exists(), f"job {job['job_name']}: no compose targets file {path}"
