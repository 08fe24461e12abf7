"""`scv sources render --k8s SPEC`: a DBA's spec as Strimzi/Kubernetes resources for GitOps, valid
against the vendored schemas, with the CDC password in a Kubernetes Secret and never in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from connectors.cli import app
from connectors.exceptions import SourceError
from connectors.kubernetes import KubernetesTarget, kubernetes_resources, secret_reference
from connectors.render import CONNECTOR_CLASS, render_connector_config
from connectors.spec import SourceSpec, load_spec, parse_spec
from scv.config.settings import ConnectSettings, Settings
from tests.schemas import resource_problems

SPECS = sorted((Path(__file__).parents[2] / "connectors" / "sources").glob("*.yaml"))
SPEC = """
name: loyalty_eu
database: {host: loyalty-db.example, port: 5433, dbname: loyalty, user: cdc_loyalty, password_env: LOYALTY_PW}
tables:
  public.members: {kind: member, customer_key: customer_id, hash_columns: [email]}
"""
TARGET = KubernetesTarget(namespace="scv", connect_cluster="scv-connect")


@pytest.fixture
def settings() -> Settings:
    return Settings(
        connect=ConnectSettings(worker_registry_url="http://apicurio.apicurio.svc:8080/apis/registry/v2")
    )


@pytest.fixture
def spec() -> SourceSpec:
    return parse_spec(SPEC, "loyalty_eu.yaml")


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_rendered_resources_validate_against_their_schemas(path: Path, settings: Settings) -> None:
    docs = kubernetes_resources(load_spec(path), path.read_text(), settings.kafka, settings.connect, TARGET)
    assert [d["kind"] for d in docs] == ["KafkaConnector", "Role", "RoleBinding", "ConfigMap", "Job"]
    assert [p for d in docs for p in resource_problems(d)] == []


def test_password_is_a_kubernetes_secret_reference(spec: SourceSpec, settings: Settings) -> None:
    docs = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))
    config = docs["KafkaConnector"]["spec"]["config"]
    assert config["database.password"] == "${secrets:scv/scv-loyalty-eu-cdc:password}"
    assert not any(str(v).startswith("${file:") for v in config.values())


def test_connector_config_is_the_rendered_config_with_strimzis_keys_moved(
    spec: SourceSpec, settings: Settings
) -> None:
    connector = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))[
        "KafkaConnector"
    ]
    rendered = render_connector_config(
        spec,
        settings.kafka,
        settings.connect,
        password_ref=secret_reference("scv", "scv-loyalty-eu-cdc", "password"),
    )
    assert connector["spec"]["class"] == rendered.pop("connector.class") == CONNECTOR_CLASS
    assert connector["spec"]["tasksMax"] == int(rendered.pop("tasks.max")) == 1
    assert rendered.pop("name") == "scv-loyalty_eu"
    assert connector["spec"]["config"] == rendered


def test_connector_config_names_the_registry_as_the_worker_sees_it(
    spec: SourceSpec, settings: Settings
) -> None:
    config = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))[
        "KafkaConnector"
    ]
    url = config["spec"]["config"]["value.converter.apicurio.registry.url"]
    assert url == "http://apicurio.apicurio.svc:8080/apis/registry/v2"


def test_connector_belongs_to_the_connect_cluster(spec: SourceSpec, settings: Settings) -> None:
    metadata = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))[
        "KafkaConnector"
    ]["metadata"]
    assert metadata["name"] == "scv-loyalty-eu"
    assert metadata["namespace"] == "scv"
    assert metadata["labels"]["strimzi.io/cluster"] == "scv-connect"


def test_secret_reader_role_grants_get_on_the_one_secret(spec: SourceSpec, settings: Settings) -> None:
    docs = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))
    assert docs["Role"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["scv-loyalty-eu-cdc"],
            "verbs": ["get"],
        }
    ]
    binding = docs["RoleBinding"]
    # Strimzi's Connect pods run as <cluster>-connect.
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "scv-connect-connect", "namespace": "scv"}
    ]
    assert binding["roleRef"]["name"] == docs["Role"]["metadata"]["name"]


def test_secret_name_and_key_can_be_given(spec: SourceSpec, settings: Settings) -> None:
    target = KubernetesTarget(
        namespace="cdc", connect_cluster="shared", secret_name="loyalty-db", secret_key="pw"
    )
    docs = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, target))
    assert docs["KafkaConnector"]["spec"]["config"]["database.password"] == "${secrets:cdc/loyalty-db:pw}"
    assert docs["Role"]["rules"][0]["resourceNames"] == ["loyalty-db"]


def test_register_job_runs_sources_register_on_the_spec(spec: SourceSpec, settings: Settings) -> None:
    docs = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))
    assert docs["ConfigMap"]["data"] == {"loyalty_eu.yaml": SPEC}
    pod = docs["Job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["sources", "register", "/etc/scv/specs/loyalty_eu.yaml"]
    assert container["envFrom"] == [{"configMapRef": {"name": "scv-settings"}}]
    assert pod["volumes"] == [{"name": "spec", "configMap": {"name": docs["ConfigMap"]["metadata"]["name"]}}]
    assert container["volumeMounts"][0]["mountPath"] == "/etc/scv/specs"


def test_register_job_is_a_new_job_when_the_spec_changes(spec: SourceSpec, settings: Settings) -> None:
    first = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))["Job"]
    again = _by_kind(kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET))["Job"]
    changed = _by_kind(
        kubernetes_resources(spec, SPEC + "# reviewed\n", settings.kafka, settings.connect, TARGET)
    )["Job"]
    assert first["metadata"]["name"] == again["metadata"]["name"] != changed["metadata"]["name"]
    assert len(first["metadata"]["name"]) <= 63


def test_longest_source_name_gives_valid_kubernetes_names(settings: Settings) -> None:
    name = "a" * 41
    spec = parse_spec(SPEC.replace("loyalty_eu", name), f"{name}.yaml")
    docs = kubernetes_resources(spec, SPEC, settings.kafka, settings.connect, TARGET)
    assert all(len(d["metadata"]["name"]) <= 63 for d in docs)
    assert [p for d in docs for p in resource_problems(d)] == []


@pytest.mark.parametrize(
    ("target", "option"),
    [
        (dict(namespace="Prod_EU", connect_cluster="scv-connect"), "--namespace"),
        (dict(namespace="scv", connect_cluster="scv.connect"), "--connect-cluster"),
        (dict(namespace="scv", connect_cluster="c", secret_name="My Secret"), "--secret"),
        (dict(namespace="scv", connect_cluster="c", secret_key="a/b"), "--secret-key"),
    ],
)
def test_invalid_kubernetes_names_are_refused_naming_the_option(target: dict[str, str], option: str) -> None:
    with pytest.raises(SourceError, match=option):
        KubernetesTarget(**target)  # type: ignore[arg-type]


def test_render_k8s_prints_yaml_and_how_to_create_the_secret() -> None:
    path = SPECS[0]
    result = CliRunner().invoke(app, ["render", "--k8s", str(path), "--namespace", "cdc"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["kind"] for d in docs] == ["KafkaConnector", "Role", "RoleBinding", "ConfigMap", "Job"]
    assert "kubectl -n cdc create secret generic" in result.stderr


def test_render_without_k8s_prints_the_connect_config() -> None:
    result = CliRunner().invoke(app, ["render", str(SPECS[0])])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["connector.class"] == CONNECTOR_CLASS


def test_render_k8s_refuses_a_bad_namespace_with_exit_1() -> None:
    result = CliRunner().invoke(app, ["render", "--k8s", str(SPECS[0]), "--namespace", "Bad_NS"])
    assert result.exit_code == 1
    assert "--namespace" in result.stderr
