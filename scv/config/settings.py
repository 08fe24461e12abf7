"""The one settings model of the service, one section per component.

Defaults work on the local stack; an optional YAML file (``SCV_CONFIG``, default ``./scv.yaml``) and
then environment variables (``SCV_<SECTION>__<KEY>``, e.g. ``SCV_KAFKA__BOOTSTRAP_SERVERS``) override
them. Each component is handed only its own section (``settings.store`` to the store, ``settings.kafka``
to the Kafka edge, ...); only the commands that orchestrate several components see the whole model.

    settings = get_settings()
    settings.kafka.bootstrap_servers  # '127.0.0.1:9092'
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "ApiSettings",
    "ApiToken",
    "ConnectSettings",
    "ConsumerSettings",
    "ExporterSettings",
    "KafkaSettings",
    "PostgresSettings",
    "ReadSettings",
    "RegistrySettings",
    "Settings",
    "StackSettings",
    "StoreSettings",
    "get_settings",
]


def _default_data_dir() -> Path:
    # PostgreSQL refuses to run as root, so under root its data must live where the `postgres` user can
    # reach it: /root is mode 0700, hence /var/lib for root and the XDG state dir for everyone else.
    if os.geteuid() == 0:
        return Path("/var/lib/scv")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "scv"


def _default_cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "scv"


class StackSettings(BaseModel):
    """Where the native stack keeps its state and which loopback ports it binds."""

    data_dir: Path = Field(default_factory=_default_data_dir)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    host: str = "127.0.0.1"
    postgres_port: int = 5432
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    connect_port: int = 8083
    registry_port: int = 8080
    cql_port: int = 9042
    cassandra_storage_port: int = 7000
    prometheus_port: int = 9090
    # Prometheus JMX exporter agents (compose/config/jmx/*.yml) inside the JVMs of the stack.
    kafka_jmx_port: int = 9404
    connect_jmx_port: int = 9405
    cassandra_jmx_port: int = 9406
    # Which alert rules the native Prometheus evaluates (compose/alerts.py): "fast" scales thresholds
    # and `for:` durations down to seconds so the integration tests see alerts fire on this stack;
    # "production" is the rule file compose/config/prometheus/rules/scv-alerts.yml as shipped.
    alert_rules: Literal["production", "fast"] = "fast"
    # Heaps are explicit so the whole stack fits beside the tests on a 2-core, 24 GiB machine.
    kafka_heap_mb: int = 512
    connect_heap_mb: int = 768
    registry_heap_mb: int = 384
    cassandra_heap_mb: int = 1024
    start_timeout_s: float = 240.0


class PostgresSettings(BaseModel):
    """The superuser connection of the demo PostgreSQL (not a source's CDC user).

    ``port`` 0 follows ``stack.postgres_port``. The local stack's superuser proves a password over TCP
    like every other role (no loopback trust); `scv stack up` generates it once and writes a libpq
    password file (``passfile``, default ``<data_dir>/secrets/pgpass``, mode 0600), which ``dsn``
    names: the password itself never appears in a connection string, a command line or a log.
    """

    host: str = "127.0.0.1"
    port: int = 0
    user: str = "postgres"
    # Set for a server whose superuser password is not in the stack's passfile (e.g. compose).
    password: SecretStr = SecretStr("")
    passfile: Path | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        dsn = f"host={self.host} port={self.port} dbname={dbname} user={self.user}"
        secret = self.password.get_secret_value()
        if secret:
            return f"{dsn} password={secret}"
        if self.passfile is None:
            return dsn
        quoted = str(self.passfile).replace("\\", "\\\\").replace("'", "\\'")
        return f"{dsn} passfile='{quoted}'"


class KafkaSettings(BaseModel):
    """The Kafka cluster. An empty address follows the stack's port."""

    bootstrap_servers: str = ""
    topic_partitions: int = 6
    replication_factor: int = 1
    # The largest change record (key + value + headers, serialized) the pipeline carries: Connect's
    # producer refuses larger ones (the connector task fails, naming the topic), the brokers and the
    # dead-letter topic accept it with room for batch framing and dead-letter headers, the replicator
    # reads it. 8 MiB: a row of several MiB fits even as an update carrying before- and after-images,
    # and the store's largest mutation (half a 32 MiB commitlog segment) stays well above it.
    max_record_bytes: int = Field(default=8 * 1024 * 1024, ge=1024 * 1024)

    @property
    def max_message_bytes(self) -> int:
        """What brokers and topics accept: one record at the maximum plus framing and dead-letter headers."""
        return self.max_record_bytes + 256 * 1024


class RegistrySettings(BaseModel):
    """The schema registry, as this process reaches it. Empty addresses follow the stack's port."""

    # Apicurio's Confluent-compatible API: both Debezium's converter ids and confluent-kafka's
    # SchemaRegistryClient resolve through it.
    url: str = ""
    # Apicurio's native API: the replicator's fallback for schemas the ccompat API cannot type.
    native_url: str = ""


class ConnectSettings(BaseModel):
    """Kafka Connect: where this process reaches its REST API, and what goes into connector configs.

    A connector config is read by the *worker*, which may run elsewhere (another container, another
    host): the registry address and the secrets folder it names are the worker's view, which defaults
    to this process's view (the native stack runs everything on one host).
    """

    url: str = ""
    # Where `scv sources add` writes each source's password file (0600); empty: <data_dir>/secrets/connect.
    secrets_dir: Path | None = None
    # The same folder as the worker sees it (rendered into ${file:...} references); empty: secrets_dir.
    worker_secrets_dir: Path | None = None
    # The registry's native API as the worker reaches it (the Avro converter); empty: registry.native_url.
    worker_registry_url: str = ""

    def secret_file(self, file_name: str) -> Path:
        assert self.secrets_dir is not None, "resolved by Settings"
        return self.secrets_dir / file_name

    def worker_secret_file(self, file_name: str) -> Path:
        assert self.worker_secrets_dir is not None, "resolved by Settings"
        return self.worker_secrets_dir / file_name


class StoreSettings(BaseModel):
    """The CQL store. ``port`` 0 follows ``stack.cql_port``."""

    contact_points: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = 0
    keyspace: str = "scv"
    local_dc: str = "datacenter1"
    # NetworkTopologyStrategy replication for `store migrate`; 1 on the local single node.
    replication_factor: int = 1
    consistency: str = "LOCAL_QUORUM"
    protocol_version: int = 4
    request_timeout_s: float = 10.0


class ReadSettings(BaseModel):
    """How the read client (scv/client) reads the view; where the store is comes from ``store``.

    The same names are read without this model by ``scv.client.ClientSettings.from_env`` (the
    `scv view get` fast path); tests/unit/test_client_settings.py keeps the two equal.
    """

    username: str = ""
    password: SecretStr = SecretStr("")
    password_file: Path | None = None
    # TLS to the store: on when ``tls`` is set (the system's CAs) or any tls_*_file is.
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_verify_hostname: bool = True
    # Empty: a read that cannot meet store.consistency fails (503); e.g. LOCAL_ONE: it is answered
    # by fewer replicas and marked possibly stale.
    fallback_consistency: str = ""
    request_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    retry_budget: int = 2
    speculative_delay_s: float = 0.05
    speculative_attempts: int = 1
    page_size: int = 500
    concurrency: int = 32
    # HMAC key of section page tokens: every replica of the API must share it. Empty: one random key
    # per process (tokens then only work against the process that issued them).
    page_token_key: SecretStr = SecretStr("")
    page_token_key_file: Path | None = None
    reactor: Literal["libev", "asyncio"] = "libev"
    token_aware: bool = True


class ApiToken(BaseModel):
    """One bearer token of the read API: who holds it, and the sections it may read (all if None)."""

    name: str
    token: SecretStr
    sections: list[str] | None = None


class ApiSettings(BaseModel):
    """The HTTP read API (`scv serve`)."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Bearer tokens, here (SCV_API__TOKENS as JSON) and/or in a YAML/JSON file holding the same list.
    tokens: list[ApiToken] = Field(default_factory=list)
    tokens_file: Path | None = None
    # Without any token the API refuses to start, unless this is set (a local experiment).
    allow_anonymous: bool = False
    bulk_max_ids: int = 100
    # Seconds a client should wait before retrying a 503 (the Retry-After header).
    retry_after_s: int = 1


class ConsumerSettings(BaseModel):
    group_id: str = "scv-replicator"
    # Loopback by default; containers set 0.0.0.0 so Prometheus can scrape across the network.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9400
    max_batch_events: int = 2000
    # How long an idle replicator blocks waiting for the next record (it wakes sooner when one
    # arrives): bounds how late registration changes and lag reports are noticed, not freshness.
    max_batch_wait_s: float = 0.05
    # Extra time a batch may gather records after its first one. 0: apply what has arrived at once
    # (consumer/service.py, _next_batch, says why that is the low-latency default).
    batch_linger_s: float = Field(default=0.0, ge=0)
    # Partitions packed into one write request when they share replicas (and ScyllaDB shard); 1 = off.
    # 64: measured on the local stack, 2,000 rows cost Cassandra 63 us/row in 64-partition batches
    # against 171 in 16-partition ones (and 328 one request per row).
    batch_partitions: int = 64
    write_concurrency: int = 64
    dead_letter_topic: str = "scv.dead-letter"
    # "Customer view changed" events (consumer/view_events.py), one per customer per batch; empty: off.
    view_events_topic: str = "scv.view-changed"
    registrations_poll_s: float = 2.0
    # Index entries of direct-key entities kept in memory (consumer/index_cache.py); about 0.4 KB
    # each. 0 turns the cache off: every update then reads the index.
    index_cache_entries: int = Field(default=300_000, ge=0)
    # Load those entries from the store after each partition assignment, before applying anything.
    index_cache_warm: bool = True
    # How often a replicator re-reads the merges other processes applied, and re-tries placing
    # entities still parked (their parent or key owner may have arrived on another process).
    redirects_poll_s: float = Field(default=5.0, gt=0)
    parked_settle_s: float = Field(default=15.0, gt=0)
    # The same round settles again what a move of a placed entity recorded this long ago
    # (store/intents.py): what a process that died, or a child written concurrently from the parent's
    # old entry, left behind. Longer than a batch's write takes, so such a child has landed by then.
    settle_intent_grace_s: float = Field(default=30.0, ge=0)
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    # A source whose records are dead-lettered this many times within the window is paused
    # (consumer/poison_storm.py) instead of draining its whole stream into the dead-letter topic;
    # 0 turns the guard off.
    poison_storm_dead_letters: int = Field(default=100, ge=0)
    poison_storm_window_s: float = Field(default=60.0, gt=0)
    # Static group membership (Kafka's group.instance.id): a restarted process takes its partitions
    # back at once instead of after the session timeout. `scv consume --processes N` gives each
    # worker slot its own; set it for a single process only if it is unique in the group.
    group_instance_id: str = ""
    # `scv consume --processes N` restarts a crashed worker after this backoff (doubling per crash in
    # a row, reset once the worker has run `worker_healthy_after_s`).
    worker_restart_initial_s: float = Field(default=1.0, gt=0)
    worker_restart_max_s: float = Field(default=60.0, gt=0)
    worker_healthy_after_s: float = Field(default=60.0, gt=0)
    # Health endpoints next to /metrics. /livez: the loop made progress (or waited for records with
    # nothing to do, or retried an outage) within ``live_after_s``. /readyz: partitions are assigned
    # and no assigned partition is more than ``ready_max_lag_s`` behind.
    live_after_s: float = Field(default=60.0, gt=0)
    ready_max_lag_s: float = Field(default=30.0, gt=0)
    # How often the lag gauges are refreshed, from their own thread (they keep moving while the loop
    # is stuck in a batch or an outage).
    lag_report_s: float = Field(default=5.0, gt=0)


class ExporterSettings(BaseModel):
    """`scv exporter`: the pipeline seen from outside any replicator (scv/exporter)."""

    host: str = "127.0.0.1"
    port: int = 9390
    # One round of questions (Kafka offsets, Connect states, slots, probes) every this many seconds.
    poll_interval_s: float = Field(default=5.0, gt=0)
    # kafka-lag-exporter's cluster_name label, so its dashboards work on these series.
    cluster_name: str = "scv"
    # Consumer groups whose lag is exported (a regex matched against the whole group id).
    groups: str = ".*"
    # (offset, time) points kept per partition to turn a committed offset into the time it was
    # produced (kafka-lag-exporter's lookup table; 120 points at 5 s cover 10 minutes of change).
    lookup_table_size: int = Field(default=120, ge=2)
    # Bound on each question the exporter asks (Kafka, Connect, PostgreSQL, registry, store).
    timeout_s: float = Field(default=5.0, gt=0)
    # A Prometheus file_sd file the exporter keeps listing the replicators it finds in the consumer
    # groups (their metrics port travels in their Kafka client.id); empty: no file. The native stack
    # points it at its Prometheus's targets/replicator.json.
    replicator_targets_file: Path | None = None
    # Prometheus, for `scv status` (freshness and dead letters); empty: the native stack's.
    prometheus_url: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCV_",
        env_nested_delimiter="__",
        yaml_file=os.environ.get("SCV_CONFIG", "scv.yaml"),
        extra="forbid",
    )

    log_format: str = "console"  # or "json"
    log_level: str = "INFO"
    stack: StackSettings = Field(default_factory=StackSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    connect: ConnectSettings = Field(default_factory=ConnectSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    exporter: ExporterSettings = Field(default_factory=ExporterSettings)
    read: ReadSettings = Field(default_factory=ReadSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _follow_stack_ports(self) -> Settings:
        # One place decides the local ports; clients follow unless told otherwise, so changing a
        # port in `stack` cannot leave a client pointing at the old one.
        st = self.stack
        if not self.postgres.port:
            self.postgres.port = st.postgres_port
        self.postgres.passfile = self.postgres.passfile or st.data_dir / "secrets" / "pgpass"
        if not self.store.port:
            self.store.port = st.cql_port
        self.kafka.bootstrap_servers = self.kafka.bootstrap_servers or f"{st.host}:{st.kafka_port}"
        registry = self.registry
        registry.url = registry.url or f"http://{st.host}:{st.registry_port}/apis/ccompat/v7"
        registry.native_url = registry.native_url or f"http://{st.host}:{st.registry_port}/apis/registry/v2"
        connect = self.connect
        connect.url = connect.url or f"http://{st.host}:{st.connect_port}"
        connect.secrets_dir = connect.secrets_dir or st.data_dir / "secrets" / "connect"
        connect.worker_secrets_dir = connect.worker_secrets_dir or connect.secrets_dir
        connect.worker_registry_url = connect.worker_registry_url or registry.native_url
        exporter = self.exporter
        exporter.prometheus_url = exporter.prometheus_url or f"http://{st.host}:{st.prometheus_port}"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > environment > YAML file > defaults.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


@functools.cache
def get_settings() -> Settings:
    return Settings()
