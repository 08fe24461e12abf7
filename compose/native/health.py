"""Health checks: one real request per service, the same one a client of that service would make.

    check_kafka(settings)   # returns None when healthy, raises HealthCheckFailed naming what failed

An open port proves little (a JVM listens long before it serves), so each check does real work:
PostgreSQL answers ``SELECT 1``, Kafka round-trips a message, Connect lists the Debezium connector and
the Avro converter, the registry lists subjects through its Confluent-compatible API, Cassandra answers
a CQL query, Prometheus reports ready, the exporter serves its own round metrics.
"""

from __future__ import annotations

import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx
import psycopg

from compose.native.exceptions import HealthCheckFailed
from scv.config.settings import Settings

__all__ = [
    "AVRO_CONVERTER",
    "DEBEZIUM_POSTGRES_CONNECTOR",
    "HEALTH_TOPIC",
    "check_cassandra",
    "check_connect",
    "check_exporter",
    "check_kafka",
    "check_postgres",
    "check_prometheus",
    "check_registry",
    "postgres_status_dsn",
]

HEALTH_TOPIC = "scv.stack.health"
DEBEZIUM_POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
AVRO_CONVERTER = "io.apicurio.registry.utils.converter.AvroConverter"
_TIMEOUT_S = 5.0


def _port_open(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        raise HealthCheckFailed(
            f"nothing accepts connections on {host}:{port} ({exc.strerror or exc})"
        ) from exc


def postgres_status_dsn(settings: Settings, dbname: str = "postgres") -> str:
    """Where the superuser connects, for display (no secret: the password is in the passfile)."""
    pg = settings.postgres
    return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{dbname}"


def check_postgres(settings: Settings) -> None:
    _port_open(settings.postgres.host, settings.postgres.port)
    try:
        # The superuser proves its password (from the stack's passfile) like any client.
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=int(_TIMEOUT_S)) as conn:
            row = conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        raise HealthCheckFailed(f"SELECT 1 failed: {exc}") from exc
    if row != (1,):
        raise HealthCheckFailed(f"SELECT 1 returned {row!r}")


def check_kafka(settings: Settings) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    from scv.kafka.admin import KafkaAdmin, KafkaUnavailable

    st = settings.stack
    _port_open(st.host, st.kafka_port)
    # log_level 0: librdkafka logs every refused connection while a broker starts, which polling expects.
    common: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "log_level": 0,
    }
    # Created explicitly (not by auto-create) so the check also proves the controller accepts writes.
    try:
        with KafkaAdmin(settings.kafka.bootstrap_servers, timeout_s=_TIMEOUT_S) as admin:
            admin.ensure_topic(
                HEALTH_TOPIC, partitions=1, replication_factor=1, config={"retention.ms": "3600000"}
            )
    except KafkaUnavailable as exc:
        raise HealthCheckFailed(str(exc)) from exc
    token = uuid.uuid4().hex.encode()
    delivered: list[tuple[int, int]] = []
    errors: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer = Producer(common | {"message.timeout.ms": int(_TIMEOUT_S * 1000), "acks": "all"})
    producer.produce(HEALTH_TOPIC, value=token, on_delivery=on_delivery)
    producer.flush(_TIMEOUT_S)
    if not delivered:
        raise HealthCheckFailed(f"produce to {HEALTH_TOPIC} not acknowledged: {errors or 'timed out'}")
    partition, offset = delivered[0]
    consumer = Consumer(common | {"group.id": "scv-stack-health", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(HEALTH_TOPIC, partition, offset)])
        deadline = time.monotonic() + _TIMEOUT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() == token:
                return
    finally:
        consumer.close()
    raise HealthCheckFailed(f"produced offset {offset} of {HEALTH_TOPIC} but could not consume it back")


def _get_json(url: str) -> object:
    try:
        resp = httpx.get(url, timeout=_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise HealthCheckFailed(f"GET {url}: {exc}") from exc
    if resp.status_code != 200:
        raise HealthCheckFailed(f"GET {url}: HTTP {resp.status_code} {resp.text[:200]}")
    return resp.json()


def _check_url_port(url: str) -> None:
    parts = urlsplit(url)
    _port_open(parts.hostname or "127.0.0.1", parts.port or 80)


def check_connect(settings: Settings) -> None:
    url = f"{settings.connect.url}/connector-plugins?connectorsOnly=false"
    _check_url_port(url)
    plugins = _get_json(url)
    classes = {p.get("class") for p in plugins if isinstance(p, dict)} if isinstance(plugins, list) else set()
    missing = {DEBEZIUM_POSTGRES_CONNECTOR, AVRO_CONVERTER} - classes
    if missing:
        raise HealthCheckFailed(
            f"Kafka Connect answers but lacks plugins {sorted(missing)}; check plugin.path"
        )


def check_registry(settings: Settings) -> None:
    url = f"{settings.registry.url}/subjects"
    _check_url_port(url)
    subjects = _get_json(url)
    if not isinstance(subjects, list):
        raise HealthCheckFailed(f"GET {url} returned {subjects!r}, expected a JSON list of subjects")


def check_cassandra(settings: Settings) -> None:
    from cassandra import ProtocolVersion
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    store = settings.store
    host = store.contact_points[0]
    _port_open(host, store.port)
    cluster = Cluster(
        [host],
        port=store.port,
        connect_timeout=_TIMEOUT_S,
        control_connection_timeout=_TIMEOUT_S,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: ExecutionProfile(
                load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=store.local_dc),
                request_timeout=_TIMEOUT_S,
            )
        },
        # v4 is what both ScyllaDB and Cassandra 5 speak; pinning it skips the driver's downgrade dance
        # (which Cassandra logs as a protocol error on every check).
        protocol_version=ProtocolVersion.V4,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=_TIMEOUT_S).one()
    except Exception as exc:  # the driver raises several unrelated types (NoHostAvailable, timeouts)
        raise HealthCheckFailed(f"CQL query failed: {exc}") from exc
    finally:
        cluster.shutdown()
    if row is None or not row.release_version:
        raise HealthCheckFailed("system.local returned no release_version")


def check_prometheus(settings: Settings) -> None:
    st = settings.stack
    url = f"http://{st.host}:{st.prometheus_port}/-/ready"
    _check_url_port(url)
    try:
        resp = httpx.get(url, timeout=_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise HealthCheckFailed(f"GET {url}: {exc}") from exc
    if resp.status_code != 200:
        raise HealthCheckFailed(f"GET {url}: HTTP {resp.status_code}")


def check_exporter(settings: Settings) -> None:
    exporter = settings.exporter
    url = f"http://{exporter.host}:{exporter.port}/metrics"
    _check_url_port(url)
    try:
        resp = httpx.get(url, timeout=_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise HealthCheckFailed(f"GET {url}: {exc}") from exc
    # Any process could hold the port; the exporter's own series say it is the exporter.
    if resp.status_code != 200 or "scv_exporter_round_errors_total" not in resp.text:
        raise HealthCheckFailed(f"GET {url}: HTTP {resp.status_code}, not the pipeline exporter's metrics")
