"""The Kubernetes shape (k8s/): every resource valid against the vendored Kubernetes, Strimzi and KEDA
schemas, and the rules the service relies on (one consumer-group member per pod, health endpoints,
disruption budgets, settings that name real fields, the Connect worker the connectors expect)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compose.native import configs
from compose.versions import COMPOSE_DIR, load_versions
from connectors.kubernetes import SECRETS_PROVIDER
from scv.config.settings import ConsumerSettings, Settings
from tests.kustomize import build, load_documents
from tests.schemas import SCHEMAS, resource_problems

K8S = COMPOSE_DIR.parent / "k8s"
KUSTOMIZATIONS = ["base", "keda", "strimzi"]
# Assumed health endpoints (consumer: next to /metrics on the metrics port; API: `scv serve`).
REPLICATOR_LIVENESS, REPLICATOR_READINESS = "/livez", "/readyz"
API_LIVENESS, API_READINESS, API_PORT = "/healthz", "/readyz", 8000
# compose/Dockerfile SCV_UID.
IMAGE_UID = 1001


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build(K8S / "base")


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_resource_validates_against_its_schema(kustomization: str) -> None:
    docs = build(K8S / kustomization)
    assert docs
    assert [p for doc in docs for p in resource_problems(doc)] == []


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_resource_lands_in_the_scv_namespace(kustomization: str) -> None:
    assert {d["metadata"]["namespace"] for d in build(K8S / kustomization)} == {"scv"}


def test_every_manifest_is_part_of_a_kustomization() -> None:
    listed = {
        (K8S / k / entry).resolve()
        for k in KUSTOMIZATIONS
        for entry in load_documents(K8S / k / "kustomization.yaml")[0].get("resources", [])
    }
    manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert manifests - listed == set()


def test_vendored_kubernetes_definitions_are_closed() -> None:
    folder = SCHEMAS / "kubernetes"
    definitions = json.loads((folder / "_definitions.json").read_text())["$defs"]
    refs: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.update(v.split("#/$defs/")[1] for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for path in folder.glob("*.json"):
        collect(json.loads(path.read_text()))
    assert refs - set(definitions) == set()


def test_a_misspelt_field_fails_validation(base: list[dict[str, Any]]) -> None:
    deployment = json.loads(json.dumps(_one(base, "Deployment", "scv-replicator")))
    _container(deployment)["livenesProbe"] = _container(deployment).pop("livenessProbe")
    assert resource_problems(deployment)


# --- the replicator -------------------------------------------------------------------------------


def test_replicator_runs_one_consumer_group_member_per_pod(base: list[dict[str, Any]]) -> None:
    container = _container(_one(base, "Deployment", "scv-replicator"))
    assert container["args"] == ["consume", "--processes", "1"]


def test_replicator_probes_its_health_endpoints_on_the_metrics_port(base: list[dict[str, Any]]) -> None:
    container = _container(_one(base, "Deployment", "scv-replicator"))
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", ConsumerSettings().metrics_port)
    probes = {
        kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert {p["port"] for p in probes.values()} == {"metrics"}
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == REPLICATOR_LIVENESS
    assert probes["readinessProbe"]["path"] == REPLICATOR_READINESS


def test_replicator_metrics_listen_beyond_the_pod(base: list[dict[str, Any]]) -> None:
    settings = _one(base, "ConfigMap", "scv-settings")["data"]
    assert settings["SCV_CONSUMER__METRICS_HOST"] == "0.0.0.0"


def test_replicator_rollout_never_adds_a_member(base: list[dict[str, Any]]) -> None:
    strategy = _one(base, "Deployment", "scv-replicator")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize("name", ["scv-replicator", "scv-api"])
def test_disruption_budget_selects_the_deployments_pods(base: list[dict[str, Any]], name: str) -> None:
    deployment = _one(base, "Deployment", name)
    budget = _one(base, "PodDisruptionBudget", name)
    selector = budget["spec"]["selector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # A budget that allows no disruption would block node drains.
    assert deployment["spec"]["replicas"] > budget["spec"].get("minAvailable", 0)


# --- the read API ---------------------------------------------------------------------------------


def test_api_serves_on_its_port_with_health_probes(base: list[dict[str, Any]]) -> None:
    container = _container(_one(base, "Deployment", "scv-api"))
    assert container["args"] == ["serve"]
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", API_PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": API_LIVENESS, "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": API_READINESS, "port": "http"}


def test_api_service_routes_to_the_api_pods(base: list[dict[str, Any]]) -> None:
    service = _one(base, "Service", "scv-api")
    pods = _one(base, "Deployment", "scv-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pods.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


# --- every scv pod --------------------------------------------------------------------------------


def _pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def test_pods_read_the_settings_configmap(base: list[dict[str, Any]]) -> None:
    for name, pod in _pod_specs(base).items():
        for container in pod["containers"]:
            assert container["envFrom"] == [{"configMapRef": {"name": "scv-settings"}}], name


def test_settings_configmap_names_existing_settings(
    base: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _one(base, "ConfigMap", "scv-settings")["data"]
    for key in data:
        section, _, field = key.removeprefix("SCV_").lower().partition("__")
        if not field:
            assert section in Settings.model_fields, key
            continue
        model = Settings.model_fields[section].annotation
        assert model is not None, key
        assert field in model.model_fields, key
    # And they parse, as a pod reads them.
    monkeypatch.setenv("SCV_CONFIG", "/nonexistent/scv.yaml")
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.kafka.bootstrap_servers == data["SCV_KAFKA__BOOTSTRAP_SERVERS"]
    assert settings.store.contact_points == json.loads(data["SCV_STORE__CONTACT_POINTS"])


def test_pods_run_as_the_images_non_root_user(base: list[dict[str, Any]]) -> None:
    for name, pod in _pod_specs(base).items():
        # runAsNonRoot alone cannot check an image whose USER is a name: the uid is explicit.
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == IMAGE_UID, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_images_are_set_by_the_kustomization(base: list[dict[str, Any]]) -> None:
    images = {c["image"] for pod in _pod_specs(base).values() for c in pod["containers"]}
    assert images == {"registry.example.com/scv/scv:0.1.0"}


def test_migration_runs_before_a_sync(base: list[dict[str, Any]]) -> None:
    job = _one(base, "Job", "scv-store-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["store", "migrate"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"


# --- scaling by lag (KEDA) ------------------------------------------------------------------------


def test_keda_scales_the_replicator_by_its_consumer_group_lag(base: list[dict[str, Any]]) -> None:
    docs = build(K8S / "keda")
    scaled = _one(docs, "ScaledObject", "scv-replicator")
    (trigger,) = scaled["spec"]["triggers"]
    settings = _one(docs, "ConfigMap", "scv-settings")["data"]
    assert scaled["spec"]["scaleTargetRef"] == {"name": "scv-replicator"}
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == settings.get(
        "SCV_CONSUMER__GROUP_ID", ConsumerSettings().group_id
    )
    assert trigger["metadata"]["bootstrapServers"] == settings["SCV_KAFKA__BOOTSTRAP_SERVERS"]
    # The HPA owns the count: none in the Deployment, and never below what the budget keeps running.
    assert "replicas" not in _one(docs, "Deployment", "scv-replicator")["spec"]
    budget = _one(docs, "PodDisruptionBudget", "scv-replicator")["spec"]
    assert scaled["spec"]["minReplicaCount"] > budget["maxUnavailable"]


# --- Kafka Connect on Strimzi ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def kafka_connect() -> dict[str, Any]:
    return _one(build(K8S / "strimzi"), "KafkaConnect", "scv-connect")


def _native_worker() -> dict[str, str]:
    text = configs.connect_properties(Settings.model_construct(), [Path("/plugins")])
    return dict(line.split("=", 1) for line in text.splitlines())


def test_kafka_connect_worker_is_the_native_worker(kafka_connect: dict[str, Any]) -> None:
    native = _native_worker()
    spec = kafka_connect["spec"]
    assert spec["groupId"] == native["group.id"]
    assert spec["configStorageTopic"] == native["config.storage.topic"]
    assert spec["offsetStorageTopic"] == native["offset.storage.topic"]
    assert spec["statusStorageTopic"] == native["status.storage.topic"]
    # What differs on a cluster: replication (the brokers' default), config providers (Secrets), and
    # what Strimzi sets itself (addresses, plugin path, the fields above).
    differs = {"config.providers", "bootstrap.servers", "group.id", "listeners", "plugin.path"}
    shared = {
        k: v
        for k, v in native.items()
        if k not in differs
        and not k.startswith(("rest.", "config.providers."))
        and not k.endswith(".storage.topic")
        and not k.endswith(".replication.factor")
    }
    assert {k: spec["config"].get(k) for k in shared} == shared


def test_kafka_connect_resolves_connector_secrets_from_kubernetes(kafka_connect: dict[str, Any]) -> None:
    config = kafka_connect["spec"]["config"]
    assert config["config.providers"] == SECRETS_PROVIDER
    assert (
        config[f"config.providers.{SECRETS_PROVIDER}.class"]
        == "io.strimzi.kafka.KubernetesSecretConfigProvider"
    )
    # KafkaConnector resources, not REST calls, define the connectors.
    assert kafka_connect["metadata"]["annotations"]["strimzi.io/use-connector-resources"] == "true"


def test_kafka_connect_plugins_are_the_pinned_versions(kafka_connect: dict[str, Any]) -> None:
    v = load_versions()
    artifacts = {
        (a["group"], a["artifact"]): a["version"]
        for plugin in kafka_connect["spec"]["build"]["plugins"]
        for a in plugin["artifacts"]
    }
    assert artifacts == {
        ("io.debezium", "debezium-connector-postgres"): v.debezium,
        ("io.apicurio", "apicurio-registry-utils-converter"): v.apicurio_converter,
    }


def test_kafka_connect_heap_is_the_native_workers(kafka_connect: dict[str, Any]) -> None:
    heap = f"{Settings.model_construct().stack.connect_heap_mb}m"
    assert kafka_connect["spec"]["jvmOptions"] == {"-Xms": heap, "-Xmx": heap}


def test_kafka_connect_reaches_the_same_kafka_as_the_service(
    kafka_connect: dict[str, Any], base: list[dict[str, Any]]
) -> None:
    settings = _one(base, "ConfigMap", "scv-settings")["data"]
    assert kafka_connect["spec"]["bootstrapServers"] == settings["SCV_KAFKA__BOOTSTRAP_SERVERS"]
    assert settings["SCV_CONNECT__URL"] == "http://scv-connect-connect-api.scv.svc:8083"
