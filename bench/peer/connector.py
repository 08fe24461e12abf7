"""The peer's configuration as data (pure: no I/O): its Connect worker and its sink connector.

    properties = worker_properties(stack_properties, names, rest_port=8093)
    config = sink_config(topics, keyspace="peer_3f2a1c", store=settings.store, registry_url=url)

The worker is the stack's own Connect worker configuration (compose/native/configs.py renders it)
with the names and the port that make it a second, separate cluster: its own ``group.id``, internal
topics and REST listener, so the stack's Debezium connectors never see it. The sink reads the very
topics `scv consume` reads, through the same converter settings the stack's connectors write them
with (connectors/render.py), unwrapped by Debezium's ``ExtractNewRecordState``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.peer.tables import ROUTE_REGEX, ROUTE_REPLACEMENT
from connectors.render import converter_config
from scv.config.settings import StoreSettings

__all__ = [
    "DROP_CLASS",
    "ROUTER_CLASS",
    "SINK_CLASS",
    "UNWRAP_CLASS",
    "PeerNames",
    "parse_properties",
    "plugin_path_entry",
    "render_properties",
    "sink_config",
    "worker_properties",
]

SINK_CLASS = "io.connect.scylladb.ScyllaDbSinkConnector"
UNWRAP_CLASS = "io.debezium.transforms.ExtractNewRecordState"
ROUTER_CLASS = "org.apache.kafka.connect.transforms.RegexRouter"
DROP_CLASS = "org.apache.kafka.connect.transforms.ReplaceField$Value"


@dataclass(frozen=True)
class PeerNames:
    """Every name one peer run creates, derived from one run id so cleanup can find them all."""

    run_id: str

    @property
    def worker_group(self) -> str:
        return f"scv-bench-peer-{self.run_id}"

    @property
    def keyspace(self) -> str:
        return f"peer_{self.run_id}"

    @property
    def connector(self) -> str:
        return f"scv-bench-peer-sink-{self.run_id}"

    @property
    def consumer_group(self) -> str:
        # Kafka Connect's sink consumer group: `connect-<connector name>`.
        return f"connect-{self.connector}"

    @property
    def internal_topics(self) -> tuple[str, str, str]:
        group = self.worker_group
        return (f"{group}-configs", f"{group}-offsets", f"{group}-status")


def parse_properties(text: str) -> dict[str, str]:
    """``key=value`` lines (the form compose/native/configs.py writes) into a dict, in order."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, _, value = stripped.partition("=")
        values[key.strip()] = value.strip()
    return values


def render_properties(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def plugin_path_entry(plugin_dir: Path) -> Path:
    """The ``plugin.path`` entry that makes ``plugin_dir`` one plugin.

    Connect treats each child of a plugin.path entry as one plugin: the unpacked folder (jars in
    ``lib/``) is such an entry as it is (``lib`` becomes the plugin); a folder holding the jars
    themselves must be given through its parent, or each jar would be a plugin of its own, without
    its dependencies."""
    if (plugin_dir / "lib").is_dir():
        return plugin_dir
    return plugin_dir.parent


def worker_properties(
    stack_properties: str, names: PeerNames, *, host: str, rest_port: int, plugin_path: Sequence[Path]
) -> dict[str, str]:
    """The stack worker's properties turned into the peer's own worker."""
    values = parse_properties(stack_properties)
    group = names.worker_group
    configs, offsets, status = names.internal_topics
    values.update(
        {
            "group.id": group,
            "listeners": f"http://{host}:{rest_port}",
            "rest.advertised.host.name": host,
            "rest.advertised.port": str(rest_port),
            "plugin.path": ",".join(str(p) for p in plugin_path),
            "config.storage.topic": configs,
            "offset.storage.topic": offsets,
            "status.storage.topic": status,
            # One partition each: a sink keeps no source offsets, the worker only its configs.
            "offset.storage.partitions": "1",
            # A sink task commits its consumer offsets every offset.flush.interval.ms (and when the
            # connector asks, after each batch): the benchmark reads progress from those commits, so a
            # commit at least every second keeps the samples as fine as the replicator's.
            "offset.flush.interval.ms": "1000",
            # The sink sets `consumer.override.auto.offset.reset` (the connector's documented setup):
            # the stack's worker allows no override, this private, loopback-only worker allows it.
            "connector.client.config.override.policy": "All",
        }
    )
    return values


def sink_config(
    topics: Sequence[str],
    *,
    keyspace: str,
    store: StoreSettings,
    registry_url: str,
    tasks: int = 1,
    exclude_fields: Sequence[str] = (),
) -> dict[str, str]:
    """The kafka-connect-scylladb sink over ``topics`` into ``keyspace`` (tables made beforehand:
    bench/peer/tables.py says why), every value a string as Connect stores it."""
    if not topics:
        raise ValueError("the peer sink needs at least one topic")
    config = {
        "connector.class": SINK_CLASS,
        "tasks.max": str(tasks),
        "topics": ",".join(topics),
        "scylladb.contact.points": ",".join(store.contact_points),
        "scylladb.port": str(store.port),
        "scylladb.loadbalancing.localdc": store.local_dc,
        "scylladb.keyspace": keyspace,
        "scylladb.keyspace.create.enabled": "false",
        # Cassandra 5 refuses the connector's CREATE TABLE (bench/peer/tables.py): tables are made
        # beforehand, and the connector must not try to alter them either.
        "scylladb.table.manage.enabled": "false",
        "scylladb.consistency.level": store.consistency.upper(),
        "scylladb.deletes.enabled": "true",
        # Offsets live in Kafka (the consumer group), as the replicator's do: comparable commits.
        "scylladb.offset.storage.table.enable": "false",
        "behavior.on.error": "FAIL",
        "transforms": "unwrap,drop,route" if exclude_fields else "unwrap,route",
        "transforms.unwrap.type": UNWRAP_CLASS,
        # A delete becomes a tombstone, which the connector applies as a DELETE by key; Debezium's own
        # tombstone after it is a second, harmless delete.
        "transforms.unwrap.delete.tombstone.handling.mode": "tombstone",
        "transforms.route.type": ROUTER_CLASS,
        "transforms.route.regex": ROUTE_REGEX,
        "transforms.route.replacement": ROUTE_REPLACEMENT,
        # From the start of each topic, as `scv consume` reads a backlog it has never seen.
        "consumer.override.auto.offset.reset": "earliest",
    }
    if exclude_fields:
        # Fields the connector cannot bind (tables.collection_fields says why), left out of the row.
        config["transforms.drop.type"] = DROP_CLASS
        config["transforms.drop.exclude"] = ",".join(exclude_fields)
    config.update(converter_config(registry_url, "key"))
    config.update(converter_config(registry_url, "value"))
    return config
