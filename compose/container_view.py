"""The compose stack as its containers see it: service names, in-container paths, and the settings
every scv container runs with.

    container_env()["SCV_KAFKA__BOOTSTRAP_SERVERS"]   # 'kafka:9092' (x-scv-environment in the file)
    container_settings().connect.worker_registry_url  # 'http://registry:8080/apis/registry/v2'

The one place these names are written for Python: compose/generated.py renders the mounted config
files from them, and tests/unit/test_compose_file.py holds docker-compose.yml to them. Container
ports are the native stack's ports (``StackSettings`` defaults), so a client that works against
``scv stack`` on one host works against the compose stack's published ports unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from compose.native.configs import KafkaListener, KafkaNetwork
from scv.config.settings import Settings, StackSettings

__all__ = [
    "CONNECT",
    "CONNECT_PLUGIN_PATH",
    "CONNECT_SECRETS_DIR",
    "EXPORTER",
    "KAFKA",
    "KAFKA_HOST_LISTENER_PORT",
    "KAFKA_LOG_DIR",
    "POSTGRES",
    "PROMETHEUS",
    "REGISTRY",
    "REPLICATOR",
    "SCYLLA",
    "container_env",
    "container_settings",
    "kafka_network",
]

# Service names on the compose network (the keys of `services:` in docker-compose.yml).
POSTGRES = "postgres"
KAFKA = "kafka"
CONNECT = "connect"
REGISTRY = "registry"
SCYLLA = "scylla"
PROMETHEUS = "prometheus"
REPLICATOR = "replicator"
EXPORTER = "exporter"

# apache/kafka creates this folder for its `appuser` (docker/jvm/Dockerfile): the `kafka-data`
# volume is mounted here, so topics and Connect's offsets survive the container.
KAFKA_LOG_DIR = Path("/var/lib/kafka/data")
# The container port of the listener for clients on the host; published as
# 127.0.0.1:<stack.kafka_port>, the address the host-side CLI uses by default.
KAFKA_HOST_LISTENER_PORT = 9094
# Where the Debezium image unpacks the PostgreSQL connector plugin, and where compose/connect.Dockerfile
# puts the Apicurio converter: the same two plugins the native worker loads, and no others.
CONNECT_PLUGIN_PATH = [
    Path("/kafka/connect/debezium-connector-postgres"),
    Path("/kafka/connect/apicurio-converter"),
]
# The `connect-secrets` volume: read-only in Connect, read-write in the `scv` service that runs
# `scv sources add`; the same path on both sides, so a ${file:...} reference written by one resolves
# in the other.
CONNECT_SECRETS_DIR = Path("/var/lib/scv/secrets/connect")


def _view() -> dict[str, Any]:
    # Only what differs from the defaults; every port is the native stack's.
    st = StackSettings()
    registry = f"http://{REGISTRY}:{st.registry_port}"
    return {
        "log_format": "json",
        "postgres": {"host": POSTGRES},
        "kafka": {"bootstrap_servers": f"{KAFKA}:{st.kafka_port}"},
        "registry": {"url": f"{registry}/apis/ccompat/v7", "native_url": f"{registry}/apis/registry/v2"},
        # worker_secrets_dir and worker_registry_url follow these: inside the compose network,
        # every container sees the registry and the secrets folder the way the worker does.
        "connect": {"url": f"http://{CONNECT}:{st.connect_port}", "secrets_dir": str(CONNECT_SECRETS_DIR)},
        "store": {"contact_points": [SCYLLA]},
        # Prometheus scrapes across the compose network.
        "consumer": {"metrics_host": "0.0.0.0"},
        "exporter": {"host": "0.0.0.0"},
    }


def container_env() -> dict[str, str]:
    """The ``SCV_*`` environment of every scv container, as pydantic-settings reads it."""
    env: dict[str, str] = {}
    for key, value in _view().items():
        if isinstance(value, dict):
            for field, item in value.items():
                text = json.dumps(item) if isinstance(item, list) else str(item)
                env[f"SCV_{key.upper()}__{field.upper()}"] = text
        else:
            env[f"SCV_{key.upper()}"] = str(value)
    return env


class _ViewOnly(Settings):
    # Rendering must not depend on who renders: no environment, no scv.yaml, only the view.
    model_config = SettingsConfigDict(yaml_file=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def container_settings() -> Settings:
    """The settings of a container on the compose network (the defaults plus ``container_env``)."""
    return _ViewOnly(**_view())


def kafka_network(settings: Settings) -> KafkaNetwork:
    """Two client listeners, one per side that must resolve what it is sent to.

    PLAINTEXT (also broker traffic): containers reach ``kafka:<kafka_port>``. HOST: clients on the
    host reach ``127.0.0.1:<kafka_port>``, which compose publishes to the container's
    ``KAFKA_HOST_LISTENER_PORT``.
    """
    st = settings.stack
    return KafkaNetwork(
        bind_host="0.0.0.0",
        controller_host=KAFKA,
        listeners=(
            KafkaListener("PLAINTEXT", st.kafka_port, f"{KAFKA}:{st.kafka_port}"),
            KafkaListener("HOST", KAFKA_HOST_LISTENER_PORT, f"127.0.0.1:{st.kafka_port}"),
        ),
    )
