"""The part of kustomize that k8s/ uses, so the tests can build a kustomization without the tool.

    docs = build(Path("k8s/keda"))   # every resource, namespace set, images replaced, patches applied

Supported: ``resources`` (files and kustomization folders), ``namespace``, ``images`` (newName,
newTag) and ``patches`` with an inline JSON 6902 patch (add/replace/remove) and a kind/name target.
Anything else in a kustomization.yaml is refused, so a feature the tests do not model fails here
instead of being ignored. (`kubectl kustomize k8s/base` builds the same; it is not needed to test.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["SUPPORTED_KEYS", "build", "load_documents"]

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def _apply_operation(doc: dict[str, Any], op: dict[str, Any]) -> None:
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if op["op"] == "remove":
        del node[int(last) if isinstance(node, list) else last]
    elif op["op"] in ("add", "replace"):
        if op["op"] == "replace":
            assert last in node, f"replace of missing {op['path']}"
        node[last] = op["value"]
    else:
        raise AssertionError(f"JSON patch op {op['op']!r} is not modelled by tests/kustomize.py")


def _images(docs: list[dict[str, Any]], images: list[dict[str, str]]) -> None:
    by_name = {image["name"]: image for image in images}

    def rewrite(spec: dict[str, Any]) -> None:
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = by_name.get(container["image"].split(":")[0])
            if image:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"

    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if isinstance(pod, dict):
            rewrite(pod)


def build(directory: Path) -> list[dict[str, Any]]:
    config = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(config) - SUPPORTED_KEYS
    assert not unknown, (
        f"{directory}/kustomization.yaml: {sorted(unknown)} not modelled by tests/kustomize.py"
    )
    docs: list[dict[str, Any]] = []
    for entry in config.get("resources", []):
        path = (directory / entry).resolve()
        docs.extend(build(path) if path.is_dir() else load_documents(path))
    for patch in config.get("patches", []):
        target = patch["target"]
        matches = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        assert matches, f"{directory}: patch target {target} matches no resource"
        for doc in matches:
            for op in yaml.safe_load(patch["patch"]):
                _apply_operation(doc, op)
    _images(docs, config.get("images", []))
    if "namespace" in config:
        for doc in docs:
            doc["metadata"]["namespace"] = config["namespace"]
    return docs
