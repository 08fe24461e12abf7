"""The stack's pinned versions, loaded from ``compose/versions.yaml`` (the only place they are written).

v = load_versions()
v.kafka                 # '4.1.2'
v.maven_properties()    # {'kafka.version': '4.1.2', ...} for compose/maven/*/pom.xml
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["COMPOSE_DIR", "VERSIONS_FILE", "Versions", "VersionsError", "load_versions"]

COMPOSE_DIR = Path(__file__).resolve().parent
VERSIONS_FILE = COMPOSE_DIR / "versions.yaml"


class VersionsError(Exception):
    """versions.yaml is missing a key, has an unknown one, or is not a mapping."""


class Versions(BaseModel):
    # Frozen and closed: a typo in versions.yaml is an error naming the key, never a silent default.
    model_config = ConfigDict(frozen=True, extra="forbid")

    postgres: str
    postgres_image: str
    kafka: str
    scala: str
    log4j: str
    slf4j: str
    debezium: str
    apicurio: str
    apicurio_converter: str
    cassandra: str
    scylla: str
    prometheus: str
    grafana: str
    jmx_exporter: str
    python: str
    maven_dependency_plugin: str
    maven_dependency_plugin_no_descriptor: str

    def maven_properties(self) -> dict[str, str]:
        """The ``-D`` properties every compose/maven/*/pom.xml takes its versions from."""
        return {
            "kafka.version": self.kafka,
            "scala.version": self.scala,
            "log4j.version": self.log4j,
            "slf4j.version": self.slf4j,
            "debezium.version": self.debezium,
            "apicurio.version": self.apicurio,
            "apicurio-converter.version": self.apicurio_converter,
            "cassandra.version": self.cassandra,
            "jmx-exporter.version": self.jmx_exporter,
            "maven-dependency-plugin.version": self.maven_dependency_plugin,
        }


@functools.cache
def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VersionsError(f"cannot read {path}: {exc}; it pins every stack version") from exc
    if not isinstance(raw, dict):
        raise VersionsError(f"{path}: expected a mapping of name: version, got {type(raw).__name__}")
    try:
        return Versions.model_validate({str(k): str(v) for k, v in raw.items()})
    except ValidationError as exc:
        raise VersionsError(f"{path}: {exc}") from exc
