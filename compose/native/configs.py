"""Configuration files of the native services, rendered from the settings.

Pure functions from settings and paths to text: the services module writes them at every start, so a
changed port or heap takes effect on the next `up` without re-initialising any data.
"""

from __future__ import annotations

import json
from pathlib import Path

from scv.config.settings import Settings

__all__ = [
    "CONNECT_CONFIG_PROVIDERS",
    "cassandra_yaml",
    "connect_properties",
    "kafka_server_properties",
    "log4j2_xml",
    "logback_xml",
    "pg_hba_conf",
    "postgres_options",
    "prometheus_targets",
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


def kafka_server_properties(settings: Settings, log_dir: Path) -> str:
    st = settings.stack
    return _properties(
        {
            # One JVM is broker and KRaft controller; the static voter set lets `StorageTool format`
            # run without --standalone and keeps the quorum fixed at this node.
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{st.host}:{st.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{st.host}:{st.kafka_port},CONTROLLER://{st.host}:{st.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{st.host}:{st.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
            # Raised from the 1 MiB default so a row of several MiB flows (KafkaSettings.max_record_bytes
            # says how every component agrees on it); topics inherit it unless they override it.
            "message.max.bytes": settings.kafka.max_message_bytes,
            "replica.fetch.max.bytes": settings.kafka.max_message_bytes,
        }
    )


# Connector configs may reference secrets as ${file:/path:key}, ${env:VAR} or ${dir:/path:file}
# instead of holding them in clear in Connect's config topic and REST answers.
CONNECT_CONFIG_PROVIDERS: dict[str, str] = {
    "file": "org.apache.kafka.common.config.provider.FileConfigProvider",
    "env": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
    "dir": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
}


def connect_properties(settings: Settings, plugin_path: list[Path]) -> str:
    st = settings.stack
    secrets_dir = settings.connect.worker_secrets_dir
    values: dict[str, str | int] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "group.id": "scv-connect",
        "listeners": f"http://{st.host}:{st.connect_port}",
        "rest.advertised.host.name": st.host,
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
        # A connector config may only read files in the secrets folder: without this, anyone who can
        # PUT a connector config could read any file the worker can (${file:/etc/...}) into it.
        "config.providers.file.param.allowed.paths": str(secrets_dir),
        "config.providers.dir.param.allowed.paths": str(secrets_dir),
        # Every source connector's producer (KafkaSettings.max_record_bytes): a larger record fails
        # the task loudly (RecordTooLargeException, topic named) instead of reaching the broker.
        "producer.max.request.size": settings.kafka.max_record_bytes,
        # Connect's producer sends each record as soon as it is handed over (linger 0), so at a
        # thousand changes/s it makes a produce request per few records: a third of Connect's and
        # much of the broker's CPU on the local stack. 10 ms of linger cuts both (Connect 62% -> 28-44%
        # of a core at 1,000 changes/s) for at most 10 ms of freshness. Set here, for the worker,
        # so connectors need no client overrides.
        "producer.linger.ms": 10,
        # Connectors may not override their clients' settings: the worker sets what they need
        # (above), and `All` let any connector config point its producer anywhere with any
        # credentials. Kafka 4.1 has no allow-list policy; `None` is the narrowest that fits.
        "connector.client.config.override.policy": "None",
    }
    for name, cls in CONNECT_CONFIG_PROVIDERS.items():
        values[f"config.providers.{name}.class"] = cls
    return _properties(values)


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


def cassandra_yaml(settings: Settings, state_dir: Path) -> str:
    st = settings.stack
    config = {
        "cluster_name": "scv-local",
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
        "endpoint_snitch": "SimpleSnitch",
        "authenticator": "AllowAllAuthenticator",
        "authorizer": "AllowAllAuthorizer",
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
        # The replicator sends unlogged batches of up to 24 KiB spanning partitions that share a
        # replica: by design, so the default warnings (5 KiB, 10 partitions) would log a line for
        # nearly every batch (79k lines in one benchmark run), and logging costs CPU on a small box.
        "batch_size_warn_threshold": "32KiB",
        "unlogged_batch_across_partitions_warn_threshold": 256,
        # Tests drop keyspaces often; snapshots of them would only fill the disk.
        "auto_snapshot": False,
        "read_request_timeout": "10000ms",
        "write_request_timeout": "10000ms",
    }
    # JSON is a subset of YAML: rendered this way the file needs no YAML emitter quirks to be exact.
    return json.dumps(config, indent=2) + "\n"


def logback_xml() -> str:
    return """<?xml version="1.0" encoding="UTF-8"?>
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def prometheus_targets(settings: Settings) -> dict[str, str]:
    """file_sd target files (name -> JSON) for compose/config/prometheus.yml on the native stack."""
    st = settings.stack
    first = settings.consumer.metrics_port
    # Up to four replicator processes on one machine, each on the next metrics port.
    replicators = [f"{st.host}:{port}" for port in range(first, first + 4)]
    labels = {"stack": "native"}
    return {
        "prometheus.json": json.dumps([{"targets": [f"{st.host}:{st.prometheus_port}"], "labels": labels}]),
        "replicator.json": json.dumps([{"targets": replicators, "labels": labels}]),
    }
