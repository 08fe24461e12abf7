"""The images build from a bare checkout with no arguments, at the pinned versions, from a context
that holds only what they copy, and share the CDC secrets with the Connect worker's uid."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from compose.versions import COMPOSE_DIR, load_versions

ROOT = COMPOSE_DIR.parent
DOCKERFILES = {"scv": COMPOSE_DIR / "Dockerfile", "connect": COMPOSE_DIR / "connect.Dockerfile"}
# debezium/container-images kafka/*/Dockerfile: `useradd -u 1001 -r -g kafka ... kafka`; the Connect
# image (connect-base, connect) runs as that user.
DEBEZIUM_KAFKA_UID = 1001
SECRETS_DIR = "/var/lib/scv/secrets/connect"


def _args(dockerfile: Path) -> dict[str, str | None]:
    args: dict[str, str | None] = {}
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"^ARG\s+(\w+)(?:=(\S+))?\s*$", line)
        if match:
            args[match.group(1)] = match.group(2)
    return args


def _copied(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    # Docker's rules for the patterns used here: a pattern matches the path or one of its parents;
    # "**/" matches any depth.
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in _ignore_patterns():
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], pattern[3:])
            ):
                return True
    return False


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_args_have_defaults(image: str) -> None:
    assert {name for name, default in _args(DOCKERFILES[image]).items() if default is None} == set()


def test_dockerfile_arg_defaults_are_the_pinned_versions() -> None:
    v = load_versions()
    assert _args(DOCKERFILES["scv"])["PYTHON_VERSION"] == v.python
    assert _args(DOCKERFILES["connect"]) == {
        "DEBEZIUM_VERSION": v.debezium,
        "APICURIO_CONVERTER_VERSION": v.apicurio_converter,
        "MAVEN_DEPENDENCY_PLUGIN_VERSION": v.maven_dependency_plugin,
    }


def test_compose_build_args_equal_the_dockerfile_defaults() -> None:
    services = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())["services"]
    for service, image in (("replicator", "scv"), ("connect", "connect")):
        args = _args(DOCKERFILES[image])
        for name, value in services[service]["build"]["args"].items():
            assert args[name] == str(value), (service, name)


def test_scv_image_runs_as_the_connect_workers_uid() -> None:
    # `scv sources add` writes each CDC password 0600; the worker reading it must be the same uid.
    assert _args(DOCKERFILES["scv"])["SCV_UID"] == str(DEBEZIUM_KAFKA_UID)
    assert "USER scv" in DOCKERFILES["scv"].read_text()


@pytest.mark.parametrize(("image", "owner"), [("scv", "scv"), ("connect", "kafka")])
def test_both_images_own_the_secrets_folder_as_that_uid(image: str, owner: str) -> None:
    # An empty named volume takes the ownership of the folder it is first mounted on: whichever
    # image mounts connect-secrets first must hand it to uid 1001.
    text = DOCKERFILES[image].read_text()
    assert re.search(rf"install -d -o {owner} -g {owner} -m 0700 .*{re.escape(SECRETS_DIR)}", text)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_what_the_dockerfiles_copy_is_in_the_build_context(image: str) -> None:
    for source in _copied(DOCKERFILES[image]):
        assert (ROOT / source).exists(), source
        assert not _ignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [
        ".git",
        ".venv",
        ".venv/lib/python3.11",
        "compose/.env",
        ".env",
        "scv.yaml",
        "store/__pycache__",
        "tests",
    ],
)
def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context(path: str) -> None:
    assert _ignored(path)
