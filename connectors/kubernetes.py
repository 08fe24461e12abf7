"""A source spec as Strimzi resources, so DBAs' specs drive GitOps on Kubernetes (pure: no I/O).

    target = KubernetesTarget(namespace="scv", connect_cluster="scv-connect")
    docs = kubernetes_resources(spec, path.read_text(), settings.kafka, settings.connect, target)
    print(yaml.safe_dump_all(docs))   # `scv sources render --k8s SPEC` does this

Five resources per source, the Kubernetes form of `scv sources add`'s steps:
1. a ``KafkaConnector`` the Strimzi operator creates the connector from. Its config is
   connectors/render.py's, with the keys Strimzi owns moved to their fields (``name`` is the
   resource's name, ``connector.class`` is ``spec.class``, ``tasks.max`` is ``spec.tasksMax``);
2. a ``Role`` allowed to read the source's one Secret and nothing else;
3. a ``RoleBinding`` of that Role to the Connect cluster's service account;
4. a ``ConfigMap`` holding the spec itself;
5. a ``Job`` running `scv sources register` on it: the registry compatibility and the mapping
   registration, from which the replicator applies the source (it subscribes by pattern, so the
   topics the connector creates later are picked up). Named after a hash of the spec, so a changed
   spec is a new Job (a Job's pod template cannot change).

The CDC password stays in a Kubernetes Secret that is never rendered: ``database.password`` is
``${secrets:<namespace>/<secret>:<key>}``, which Strimzi's KubernetesSecretConfigProvider resolves
inside the Connect pods (k8s/strimzi/kafka-connect.yaml enables it under the name ``secrets``), so the
REST API, the config topic and the rendered YAML hold the reference only. Addresses in the config are
the worker's view from the settings (``SCV_CONNECT__WORKER_REGISTRY_URL``, ``SCV_KAFKA__*``), as for
`scv sources add`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from connectors.exceptions import SourceError
from connectors.render import CONNECTOR_CLASS, LiveChoices, render_connector_config
from connectors.spec import SourceSpec
from scv.config.settings import ConnectSettings, KafkaSettings
from scv.contracts.naming import SourceNames

__all__ = [
    "SECRETS_PROVIDER",
    "STRIMZI_API",
    "KubernetesTarget",
    "kubernetes_resources",
    "secret_reference",
]

STRIMZI_API: Final = "kafka.strimzi.io/v1"
# The name KafkaConnect's spec.config gives Strimzi's KubernetesSecretConfigProvider.
SECRETS_PROVIDER: Final = "secrets"
_RBAC_API: Final = "rbac.authorization.k8s.io/v1"
# Keys Strimzi sets from the KafkaConnector's own fields.
_OWNED_BY_STRIMZI: Final = ("name", "connector.class", "tasks.max")
# RFC 1123 label: namespaces, and what Strimzi derives resource names from.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True)
class KubernetesTarget:
    """Where the resources go: the namespace of the Strimzi ``KafkaConnect`` cluster named
    ``connect_cluster``, and the Secret holding the CDC password (default ``scv-<source>-cdc``)."""

    namespace: str
    connect_cluster: str
    secret_name: str | None = None
    secret_key: str = "password"
    # The registration Job: the project's image, and the ConfigMap of SCV_* settings (k8s/base).
    image: str = "scv"
    settings_configmap: str = "scv-settings"

    def __post_init__(self) -> None:
        for option, value in (("--namespace", self.namespace), ("--connect-cluster", self.connect_cluster)):
            if not _DNS_LABEL.match(value):
                raise SourceError(
                    f"{option} {value!r} is not a Kubernetes name: lower-case letters, digits and '-', "
                    f"at most 63 characters, starting and ending with a letter or digit"
                )
        if self.secret_name is not None and not _DNS_LABEL.match(self.secret_name):
            raise SourceError(f"--secret {self.secret_name!r} is not a Kubernetes name (e.g. scv-crm-cdc)")
        if not _DNS_LABEL.match(self.settings_configmap):
            raise SourceError(f"--settings-configmap {self.settings_configmap!r} is not a Kubernetes name")
        if not _SECRET_KEY.match(self.secret_key):
            raise SourceError(f"--secret-key {self.secret_key!r} is not a Secret key (letters, digits, -._)")

    def secret_for(self, names: SourceNames) -> str:
        # Source names are lower snake case; Kubernetes names take '-' instead of '_'.
        return self.secret_name or f"{names.connector}-cdc".replace("_", "-")

    @property
    def service_account(self) -> str:
        """The service account Strimzi gives the Connect pods of ``connect_cluster``."""
        return f"{self.connect_cluster}-connect"


def secret_reference(namespace: str, secret: str, key: str) -> str:
    """What ``database.password`` holds on Kubernetes: a KubernetesSecretConfigProvider reference."""
    return f"${{{SECRETS_PROVIDER}:{namespace}/{secret}:{key}}}"


def _labels(spec: SourceSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": "scv",
        "app.kubernetes.io/component": "source",
        "app.kubernetes.io/instance": spec.name.replace("_", "-"),
    }


def _metadata(name: str, target: KubernetesTarget, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": target.namespace, "labels": labels}


# The project's image runs as this uid (compose/Dockerfile SCV_UID); set explicitly because
# runAsNonRoot cannot verify the image's named USER.
_RUN_AS_USER: Final = 1001
_SPEC_DIR: Final = "/etc/scv/specs"


def _register_job(
    spec: SourceSpec, spec_text: str, target: KubernetesTarget, resource_name: str, labels: dict[str, str]
) -> dict[str, Any]:
    # At most 4 + 41 + 10 + 8 = 63 characters: a Job's name becomes a label value.
    digest = hashlib.sha256(f"{spec_text}\0{target.image}\0{target.settings_configmap}".encode()).hexdigest()
    container = {
        "name": "register",
        "image": target.image,
        "args": ["sources", "register", f"{_SPEC_DIR}/{spec.name}.yaml"],
        "envFrom": [{"configMapRef": {"name": target.settings_configmap}}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "spec", "mountPath": _SPEC_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(f"{resource_name}-register-{digest[:8]}", target, labels),
        "spec": {
            "backoffLimit": 10,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "spec", "configMap": {"name": f"{resource_name}-spec"}}],
                },
            },
        },
    }


def kubernetes_resources(
    spec: SourceSpec,
    spec_text: str,
    kafka: KafkaSettings,
    connect: ConnectSettings,
    target: KubernetesTarget,
    *,
    choices: LiveChoices | None = None,
) -> list[dict[str, Any]]:
    """The KafkaConnector, Role, RoleBinding, ConfigMap and Job of ``spec`` (in that order).

    ``spec_text``: the spec file as the DBA wrote it, for the registration Job.
    """
    names = spec.names
    secret = target.secret_for(names)
    config = render_connector_config(
        spec,
        kafka,
        connect,
        choices=choices,
        password_ref=secret_reference(target.namespace, secret, target.secret_key),
    )
    owned = {key: config.pop(key) for key in _OWNED_BY_STRIMZI}
    if owned["connector.class"] != CONNECTOR_CLASS:
        raise SourceError(f"unexpected connector class {owned['connector.class']!r}")
    # Strimzi names the connector in Kafka Connect after the resource: the name `scv sources add`
    # gives it (a source name's underscores become '-', which Kubernetes names require).
    resource_name = names.connector.replace("_", "-")
    reader = f"{resource_name}-secret-reader"
    labels = _labels(spec)
    connector = {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaConnector",
        "metadata": _metadata(
            resource_name, target, {"strimzi.io/cluster": target.connect_cluster, **labels}
        ),
        "spec": {
            "class": owned["connector.class"],
            "tasksMax": int(owned["tasks.max"]),
            "state": "running",
            # A task that failed (the database was unreachable a while) is restarted with backoff.
            "autoRestart": {"enabled": True},
            "config": config,
        },
    }
    role = {
        "apiVersion": _RBAC_API,
        "kind": "Role",
        "metadata": _metadata(reader, target, labels),
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": _RBAC_API,
        "kind": "RoleBinding",
        "metadata": _metadata(reader, target, labels),
        "subjects": [
            {"kind": "ServiceAccount", "name": target.service_account, "namespace": target.namespace}
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": reader},
    }
    spec_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(f"{resource_name}-spec", target, labels),
        "data": {f"{spec.name}.yaml": spec_text},
    }
    return [connector, role, binding, spec_map, _register_job(spec, spec_text, target, resource_name, labels)]
