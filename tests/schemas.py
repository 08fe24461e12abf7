"""The vendored schemas of tests/fixtures/schemas, as validators: the compose file's, and one per
Kubernetes kind this project writes (built-in kinds strict as published, CRDs made strict here).

    problems = resource_problems(doc)        # [] when the resource validates
    problems = compose_problems(compose)     # [] when the compose file validates
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["KINDS", "compose_problems", "resource_problems", "strict_crd_schema"]

SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"

# (apiVersion, kind) -> schema file under SCHEMAS; built-in kinds from kubernetes/, CRDs elsewhere.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "kubernetes/configmap-v1.json",
    ("v1", "Service"): "kubernetes/service-v1.json",
    ("apps/v1", "Deployment"): "kubernetes/deployment-apps-v1.json",
    ("batch/v1", "Job"): "kubernetes/job-batch-v1.json",
    ("policy/v1", "PodDisruptionBudget"): "kubernetes/poddisruptionbudget-policy-v1.json",
    ("rbac.authorization.k8s.io/v1", "Role"): "kubernetes/role-rbac-v1.json",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "kubernetes/rolebinding-rbac-v1.json",
    ("kafka.strimzi.io/v1", "KafkaConnect"): "strimzi/kafkaconnect-v1.json",
    ("kafka.strimzi.io/v1", "KafkaConnector"): "strimzi/kafkaconnector-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda/scaledobject-v1alpha1.json",
}


def _load(relative: str) -> dict[str, Any]:
    data = json.loads((SCHEMAS / relative).read_text(encoding="utf-8"))
    assert isinstance(data, dict), relative
    return data


def strict_crd_schema(schema: Any) -> Any:
    """A CRD's structural schema with unknown fields refused where the API server would prune them.

    Every object that lists its ``properties`` and neither allows other keys nor preserves unknown
    fields gets ``additionalProperties: false``: a misspelt field fails validation instead of
    vanishing silently on apply.
    """
    if isinstance(schema, list):
        return [strict_crd_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_crd_schema(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _kubernetes_registry() -> Registry:  # type: ignore[type-arg]
    definitions = _load("kubernetes/_definitions.json")
    resource = Resource.from_contents(definitions, default_specification=DRAFT202012)
    return Registry().with_resource(definitions["$id"], resource)


@functools.cache
def _validator(api_version: str, kind: str) -> Validator:
    relative = KINDS[(api_version, kind)]
    schema = _load(relative)
    if relative.startswith("kubernetes/"):
        return Draft202012Validator(schema, registry=_kubernetes_registry())
    # CRD schemas are OpenAPI v3 schemas: Draft 7 reads their keywords and ignores the x-kubernetes ones.
    return Draft7Validator(strict_crd_schema(copy.deepcopy(schema)))


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def resource_problems(doc: dict[str, Any]) -> list[str]:
    """Schema violations of one Kubernetes resource; a kind without a vendored schema is one."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    name = doc.get("metadata", {}).get("name", "?")
    if key not in KINDS:
        return [f"{key[1]} {name}: no vendored schema for {key[0]} {key[1]} (tests/fixtures/schemas)"]
    errors = sorted(_validator(*key).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{key[1]} {name}: {_describe(e)}" for e in errors]


@functools.cache
def _compose_validator() -> Validator:
    return Draft7Validator(_load("compose/compose-spec.json"))


def compose_problems(compose: dict[str, Any]) -> list[str]:
    errors = sorted(_compose_validator().iter_errors(compose), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors]
