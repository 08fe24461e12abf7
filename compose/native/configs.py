"""Configuration files of the native services, rendered from the settings.

Pure functions from settings and paths to text: the services module writes them at every start, so a
changed port or heap takes effect on the next `up` without re-initialising any data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scv.config.settings import Settings

__all__ = [
    "CONNECT_CONFIG_PROVIDERS",
    "STORE_NODE",
    "KafkaListener",
    "KafkaNetwork",
    "StoreNode",
    "cassandra_yaml",
    "connect_properties",
    "exporter_environment",
    "kafka_server_properties",
    "log4j2_xml",
    "logback_xml",
    "pg_hba_conf",
    "postgres_options",
    "prometheus_targets",
    "registry_properties",
    "scylla_args",
]


def _properties(values: dict[str, str | int]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def postgres_options(settings: Settings, socket_dir: Path, hba_file: Path) -> dict[str, str]:
    """``-c`` options of the postmaster; on the command line so no postgresql.conf edit is needed."""
    st = settings.stack
    return {
        "listen_addresses": st.host,
        "port": str(st.postgres_port),
        "unix_socket_directories": str(socket_dir),
        "hba_file": str(hba_file),
        # Debezium's pgoutput needs logical WAL; each source holds one slot and one WAL sender, and
        # tests create throwaway ones beside the demo sources.
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "max_connections": "200",
        # Bounded memory: the whole stack shares a 24 GiB machine with the tests.
        "shared_buffers": "128MB",
        "work_mem": "4MB",
        "maintenance_work_mem": "64MB",
        "max_wal_size": "512MB",
        # Logical decoding sends a transaction only once its WAL is flushed. The demo workload commits
        # asynchronously, so its WAL waits for the WAL writer: at the 200 ms default that wait alone
        # was the median of Debezium's capture latency (measured 180 ms -> 36 ms at 1,000 changes/s).
        "wal_writer_delay": "10ms",
        "logging_collector": "off",
        "log_line_prefix": "%m [%p] %q%u@%d ",
    }


def pg_hba_conf() -> str:
    # The superuser trusts loopback so status checks and tests need no secret; every other role (CDC
    # users, the registry) proves a real password with SCRAM, so a missing or wrong password in a
    # connector config fails here exactly as it would in production.
    return (
        "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
        "local   all       postgres                 trust\n"
        "host    all       postgres  127.0.0.1/32   trust\n"
        "host    all       postgres  ::1/128        trust\n"
        "host    replication postgres 127.0.0.1/32  trust\n"
        "local   all       all                      scram-sha-256\n"
        "host    all       all       127.0.0.1/32   scram-sha-256\n"
        "host    all       all       ::1/128        scram-sha-256\n"
        "host    replication all     127.0.0.1/32   scram-sha-256\n"
    )


@dataclass(frozen=True)
class KafkaListener:
    """A client listener: the port the broker binds, and the ``host:port`` it sends clients to."""

    name: str
    port: int
    advertised: str


@dataclass(frozen=True)
class KafkaNetwork:
    """Where the broker listens and what it tells each kind of client.

    A client bootstraps on any address, then connects to the *advertised* address of the listener it
    came in on, so each listener must advertise a name that its own clients resolve: the native stack
    has one (loopback), the compose stack two (the service name for containers, 127.0.0.1 and the
    published port for the host; compose/container_view.py). The first listener carries broker
    traffic; the KRaft controller listener is added to every layout.
    """

    bind_host: str
    controller_host: str
    listeners: tuple[KafkaListener, ...]

    @classmethod
    def native(cls, settings: Settings) -> KafkaNetwork:
        st = settings.stack
        plaintext = KafkaListener("PLAINTEXT", st.kafka_port, f"{st.host}:{st.kafka_port}")
        return cls(bind_host=st.host, controller_host=st.host, listeners=(plaintext,))


def kafka_server_properties(settings: Settings, log_dir: Path, network: KafkaNetwork | None = None) -> str:
    st = settings.stack
    net = network or KafkaNetwork.native(settings)
    bound = [f"{c.name}://{net.bind_host}:{c.port}" for c in net.listeners]
    bound.append(f"CONTROLLER://{net.bind_host}:{st.kafka_controller_port}")
    protocols = [f"{c.name}:PLAINTEXT" for c in net.listeners] + ["CONTROLLER:PLAINTEXT"]
    return _properties(
        {
            # One JVM is broker and KRaft controller; the static voter set lets `StorageTool format`
            # run without --standalone and keeps the quorum fixed at this node.
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{net.controller_host}:{st.kafka_controller_port}",
            "listeners": ",".join(bound),
            "advertised.listeners": ",".join(f"{c.name}://{c.advertised}" for c in net.listeners),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": net.listeners[0].name,
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(log_dir),
            "num.partitions": settings.kafka.topic_partitions,
            # A single node cannot hold more than one replica of the internal topics.
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "log.retention.hours": 72,
            "log.segment.bytes": 64 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
    )


# Connector configs may reference secrets as ${file:/path:key}, ${env:VAR} or ${dir:/path:file}
# instead of holding them in clear in Connect's config topic and REST answers.
CONNECT_CONFIG_PROVIDERS: dict[str, str] = {
    "file": "org.apache.kafka.common.config.provider.FileConfigProvider",
    "env": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
    "dir": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
}


def connect_properties(
    settings: Settings,
    plugin_path: list[Path],
    *,
    bind_host: str | None = None,
    advertised_host: str | None = None,
) -> str:
    """The distributed worker's properties; the REST API binds ``bind_host`` and is advertised to the
    other workers as ``advertised_host`` (both the stack's host unless given: a container binds all
    interfaces and is reached by its service name)."""
    st = settings.stack
    values: dict[str, str | int] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "group.id": "scv-connect",
        "listeners": f"http://{bind_host or st.host}:{st.connect_port}",
        "rest.advertised.host.name": advertised_host or st.host,
        "rest.advertised.port": st.connect_port,
        "plugin.path": ",".join(str(p) for p in plugin_path),
        # JSON is only the default: every Debezium connector of this project sets the Avro converter.
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "config.storage.topic": "scv-connect-configs",
        "offset.storage.topic": "scv-connect-offsets",
        "status.storage.topic": "scv-connect-status",
        "config.storage.replication.factor": 1,
        "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1,
        "offset.storage.partitions": 5,
        "status.storage.partitions": 1,
        # Short flush: a restarted connector re-reads at most this much WAL, and tests see committed
        # source offsets quickly.
        "offset.flush.interval.ms": 5000,
        "scheduled.rebalance.max.delay.ms": 5000,
        "config.providers": ",".join(CONNECT_CONFIG_PROVIDERS),
        # Connectors set producer.override.* (connectors/render.py); say so instead of relying on
        # the default policy, which distributions change.
        "connector.client.config.override.policy": "All",
    }
    for name, cls in CONNECT_CONFIG_PROVIDERS.items():
        values[f"config.providers.{name}.class"] = cls
    return _properties(values)


def registry_properties(settings: Settings, jdbc_url: str, username: str, work_dir: Path) -> dict[str, str]:
    """Apicurio Registry's configuration (Quarkus properties; the compose stack sets the same ones as
    environment variables, which Quarkus maps back: ``APICURIO_STORAGE_KIND`` -> ``apicurio.storage.kind``).
    """
    st = settings.stack
    return {
        "quarkus.http.host": st.host,
        "quarkus.http.port": str(st.registry_port),
        "quarkus.log.level": "INFO",
        # SQL storage on the stack's PostgreSQL: schema ids must survive `down`/`up`, because Kafka
        # records written before a restart still carry them.
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "postgresql",
        "apicurio.datasource.url": jdbc_url,
        "apicurio.datasource.username": username,
        "apicurio.datasource.jdbc.initial-size": "2",
        "apicurio.datasource.jdbc.min-size": "2",
        "apicurio.datasource.jdbc.max-size": "10",
        # The ccompat API hands out contentIds as schema ids (Apicurio 3's default, pinned here): the
        # Connect converter writes contentIds into the Confluent wire format, so both must agree.
        "apicurio.ccompat.legacy-id-mode.enabled": "false",
        "apicurio.storage.snapshot.location": str(work_dir),
        "apicurio.import.work-dir": str(work_dir),
    }


def log4j2_xml() -> str:
    """Console-only log4j2 config for Kafka and Connect: the supervisor captures stdout into the log file."""
    return """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="stdout"/></Root>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="org.apache.kafka.common.config" level="WARN"/>
    <Logger name="org.apache.kafka.connect.runtime.isolation" level="WARN"/>
    <!-- One access-log line per health poll would bury the lines that explain a failure. -->
    <Logger name="org.apache.kafka.connect.runtime.rest.RestServer" level="WARN"/>
    <Logger name="org.reflections" level="ERROR"/>
    <Logger name="kafka.log" level="WARN"/>
    <Logger name="org.apache.kafka.storage" level="WARN"/>
  </Loggers>
</Configuration>
"""


@dataclass(frozen=True)
class StoreNode:
    """What the CQL node is told the same way on both shapes: Cassandra 5 natively
    (``cassandra_yaml``), ScyllaDB in compose (``scylla_args``), each in its own names and units."""

    cluster_name: str = "scv-local"
    # SimpleSnitch puts the node in "datacenter1", the StoreSettings.local_dc default that
    # `scv store migrate` names in NetworkTopologyStrategy and the driver routes by.
    endpoint_snitch: str = "SimpleSnitch"
    authenticator: str = "AllowAllAuthenticator"
    authorizer: str = "AllowAllAuthorizer"
    request_timeout_ms: int = 10_000
    # The replicator sends unlogged batches of up to 24 KiB spanning partitions that share a
    # replica: by design, so the default warnings (5 KiB, 10 partitions) would log a line for
    # nearly every batch (79k lines in one benchmark run), and logging costs CPU on a small box.
    batch_size_warn_kib: int = 32


STORE_NODE = StoreNode()


def cassandra_yaml(settings: Settings, state_dir: Path) -> str:
    st = settings.stack
    node = STORE_NODE
    config = {
        "cluster_name": node.cluster_name,
        "num_tokens": 16,
        "allocate_tokens_for_local_replication_factor": 1,
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "data_file_directories": [str(state_dir / "data")],
        "commitlog_directory": str(state_dir / "commitlog"),
        "saved_caches_directory": str(state_dir / "saved_caches"),
        "hints_directory": str(state_dir / "hints"),
        "cdc_raw_directory": str(state_dir / "cdc_raw"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "32MiB",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": f"{st.host}:{st.cassandra_storage_port}"}],
            }
        ],
        "listen_address": st.host,
        "rpc_address": st.host,
        "storage_port": st.cassandra_storage_port,
        "native_transport_port": st.cql_port,
        "start_native_transport": True,
        "endpoint_snitch": node.endpoint_snitch,
        "authenticator": node.authenticator,
        "authorizer": node.authorizer,
        "role_manager": "CassandraRoleManager",
        # A fresh single node has no 4.x peers to stay compatible with: enable every 5.0 format.
        "storage_compatibility_mode": "NONE",
        # Trie memtables with their cells off the heap (Cassandra 5's cassandra_latest.yaml): with
        # the default on-heap skip lists, 5.7 MiB of writes took 25.6 MiB of heap, so memtables were
        # flushed every few seconds into small sstables that compaction then rewrote, and young-GC
        # pauses of ~300 ms showed up as the replicator's freshness tail.
        "memtable": {
            "configurations": {
                "skiplist": {"class_name": "SkipListMemtable"},
                "trie": {"class_name": "TrieMemtable"},
                "default": {"inherits": "trie"},
            }
        },
        "memtable_allocation_type": "offheap_objects",
        # Flushes are triggered by the on-heap part (~370 bytes per write even off-heap): 256 MiB
        # flushes about every half minute at 1,000 changes/s instead of every 15 s.
        "memtable_heap_space": "256MiB",
        "memtable_offheap_space": "512MiB",
        # Compaction is a burst of a whole core on a 2-core box; throttled, the same work is spread
        # out instead of starving Debezium and the replicator for seconds (the capture latency tail
        # lined up with compactions of customer_view).
        "compaction_throughput": "16MiB/s",
        # Trie-indexed sstables (BTI): cheaper partition lookups for the index reads the replicator
        # makes per change. Cassandra-only; ScyllaDB has its own formats.
        "sstable": {"selected_format": "bti"},
        # Granularity of the row index inside a partition. An entity_index partition holds a bucket
        # of a table (~1,000 entities); at BTI's 16 KiB default a point read deserialised ~150 rows
        # to find one (ReadStage was the store's largest CPU user at 1,000 changes/s).
        "column_index_size": "4KiB",
        "key_cache_size": "16MiB",
        "counter_cache_size": "8MiB",
        "file_cache_size": "64MiB",
        "disk_access_mode": "mmap_index_only",
        "concurrent_reads": 8,
        "concurrent_writes": 16,
        "concurrent_counter_writes": 8,
        "concurrent_compactors": 1,
        "native_transport_max_threads": 32,
        "hinted_handoff_enabled": False,
        "batch_size_warn_threshold": f"{node.batch_size_warn_kib}KiB",
        "unlogged_batch_across_partitions_warn_threshold": 256,
        # Tests drop keyspaces often; snapshots of them would only fill the disk.
        "auto_snapshot": False,
        "read_request_timeout": f"{node.request_timeout_ms}ms",
        "write_request_timeout": f"{node.request_timeout_ms}ms",
    }
    # JSON is a subset of YAML: rendered this way the file needs no YAML emitter quirks to be exact.
    return json.dumps(config, indent=2) + "\n"


def scylla_args(settings: Settings) -> list[str]:
    """The ``StoreNode`` values as ScyllaDB command-line options, for the compose stack's ScyllaDB.

    Options, not a scylla.yaml: the image's own scylla.yaml stays in place (its packaging paths and
    defaults), its entrypoint passes the container's address as ``--listen-address``/``--rpc-address``
    and hands every other option to ScyllaDB, which accepts each scylla.yaml key as ``--key-name``.
    Cassandra's tuning above (trie memtables, BTI sstables, row index size) has no ScyllaDB
    counterpart and stays Cassandra's.
    """
    st = settings.stack
    node = STORE_NODE
    options = {
        "cluster-name": node.cluster_name,
        "endpoint-snitch": node.endpoint_snitch,
        "authenticator": node.authenticator,
        "authorizer": node.authorizer,
        "native-transport-port": st.cql_port,
        "storage-port": st.cassandra_storage_port,
        "read-request-timeout-in-ms": node.request_timeout_ms,
        "write-request-timeout-in-ms": node.request_timeout_ms,
        "batch-size-warn-threshold-in-kb": node.batch_size_warn_kib,
    }
    return [item for key, value in options.items() for item in (f"--{key}", str(value))]


def logback_xml() -> str:
    return """<?xml version="1.0" encoding="UTF-8"?>
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def prometheus_targets(
    settings: Settings, hosts: Mapping[str, str] | None = None, stack: str = "native"
) -> dict[str, str]:
    """file_sd target files (name -> JSON) for compose/config/prometheus.yml.

    ``hosts`` names the host of each scraped service where it is not the stack's host (compose: the
    service names); given, it also says which services there are: only those it names are listed
    (compose has no Cassandra, and its replicator has a fixed address). ``stack`` is the label that
    tells the shapes apart. Natively every JMX agent is listed and replicator.json is not: the
    pipeline exporter keeps that file, with the replicators it finds in their consumer groups
    (scv/exporter/discovery.py); `scv stack up` only creates it empty when it is missing.
    """
    st = settings.stack
    where = dict(hosts or {})

    def listed(service: str) -> bool:
        return hosts is None or service in where

    labels = {"stack": stack}
    prometheus = f"{where.get('prometheus', st.host)}:{st.prometheus_port}"
    files = {"prometheus.json": json.dumps([{"targets": [prometheus], "labels": labels}])}
    if listed("exporter"):
        exporter = f"{where.get('exporter', settings.exporter.host)}:{settings.exporter.port}"
        files["exporter.json"] = json.dumps([{"targets": [exporter], "labels": labels}])
    agents = (
        ("kafka", st.kafka_jmx_port),
        ("connect", st.connect_jmx_port),
        ("cassandra", st.cassandra_jmx_port),
    )
    files["jmx.json"] = json.dumps(
        [
            {"targets": [f"{where.get(service, st.host)}:{port}"], "labels": labels | {"service": service}}
            for service, port in agents
            if listed(service)
        ]
    )
    if "replicator" in where:
        first = settings.consumer.metrics_port
        # Up to four replicator processes on one host (`scv consume --processes N`), each on the next
        # metrics port.
        replicators = [f"{where['replicator']}:{port}" for port in range(first, first + 4)]
        files["replicator.json"] = json.dumps([{"targets": replicators, "labels": labels}])
    return files


def exporter_environment(settings: Settings, replicator_targets: Path) -> dict[str, str]:
    """The settings sections `scv exporter` needs, as SCV_<SECTION> JSON variables.

    The supervisor starts services without the caller's SCV_* variables (a test session's keyspace
    must not leak into the stack): the exporter gets exactly the resolved sections it reads, so it
    watches the same cluster the stack was started for. None of them holds a secret (CDC passwords
    are read from the Connect secret files).
    """
    exporter = settings.exporter.model_copy(update={"replicator_targets_file": replicator_targets})
    sections = {
        "SCV_KAFKA": settings.kafka,
        "SCV_REGISTRY": settings.registry,
        "SCV_CONNECT": settings.connect,
        "SCV_STORE": settings.store,
        "SCV_EXPORTER": exporter,
    }
    env = {name: section.model_dump_json() for name, section in sections.items()}
    return env | {"SCV_LOG_FORMAT": "json", "SCV_LOG_LEVEL": settings.log_level}
