"""The native services: for each, what it depends on, how to prepare and launch it, how to check it.

    for svc in SERVICES: print(svc.name, svc.depends_on, svc.endpoint(settings))

``prepare`` writes the service's config (every start, so changed settings apply) and runs its one-time
initialisation (initdb, Kafka storage format, the registry's database) guarded by what that step
leaves on disk; it returns the ``Launch`` the supervisor runs.
"""

from __future__ import annotations

import base64
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from compose.alerts import PROFILES, render_rules
from compose.native import configs, health
from compose.native.exceptions import ServiceStartError
from compose.native.paths import StackPaths
from compose.native.supervisor import Launch, run_as
from compose.versions import COMPOSE_DIR, Versions
from scv.config.settings import Settings

__all__ = ["SERVICES", "Context", "Service", "service_by_name"]


@dataclass(frozen=True)
class Context:
    settings: Settings
    paths: StackPaths
    versions: Versions
    bundles: Mapping[str, Path]


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    depends_on: tuple[str, ...]
    # The docker-compose.yml service playing the same role (checked by test_compose_consistency).
    compose_service: str
    endpoint: Callable[[Settings], str]
    prepare: Callable[[Context], Launch]
    check: Callable[[Settings], None]


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceStartError("java", "no `java` on PATH; install openjdk-17-jre-headless")
    return java


def _gc_log(paths: StackPaths, service: str) -> str:
    # Pauses are what a latency tail is made of on a small shared box: every JVM logs its own.
    return f"-Xlog:gc:file={paths.logs / f'{service}-gc.log'}:time,uptime:filecount=2,filesize=10m"


def _jmx_agent(ctx: Context, service: str, port: int) -> str:
    """The Prometheus JMX exporter agent on ``port``, with the service's rules (compose/config/jmx/).

    The rules are copied into the service's state folder, like every other config it runs with: a
    running JVM must not depend on the checkout that started it (the agent re-reads its file)."""
    jar = ctx.bundles["jmx-exporter"] / "jmx_prometheus_javaagent.jar"
    rules = ctx.paths.state(service) / "jmx-exporter.yml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(COMPOSE_DIR / "config" / "jmx" / f"{service}.yml", rules)
    return f"-javaagent:{jar}={ctx.settings.stack.host}:{port}:{rules}"


def _jvm_options(heap_mb: int, tmp: Path, gc_log: str, fixed_heap: bool = False) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    # -Xms small, -Xmx explicit: the heap can grow to its bound but idle services keep a small RSS.
    # ``fixed_heap`` for the services on the capture path (Kafka, Connect): a heap that starts small
    # keeps a small young generation, and Connect then paused for a young GC every ~3 s under the
    # demo workload; every pause of either holds back Debezium's records.
    return [
        f"-Xms{heap_mb if fixed_heap else min(heap_mb, 128)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        gc_log,
        "-XX:MaxMetaspaceSize=256m",
        "-XX:MaxDirectMemorySize=256m",
        "-XX:ReservedCodeCacheSize=128m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={tmp}",
    ]


def _chown(path: Path, user: str | None) -> None:
    if user is not None and os.geteuid() == 0:
        shutil.chown(path, user=user, group=pwd.getpwnam(user).pw_gid)


def _run_once(service: str, argv: list[str], user: str | None = None) -> None:
    uid, gid = run_as(user)
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        user=uid,
        group=gid,
        extra_groups=[] if uid is not None else None,
    )
    if proc.returncode != 0:
        raise ServiceStartError(service, f"`{' '.join(argv)}` failed", (proc.stdout + proc.stderr)[-3000:])


# --- PostgreSQL -----------------------------------------------------------------------------------


def _prepare_postgres(ctx: Context) -> Launch:
    # PostgreSQL refuses to run as root; under root it runs as the Debian package's `postgres` user.
    user = "postgres" if os.geteuid() == 0 else None
    bindir = Path(f"/usr/lib/postgresql/{ctx.versions.postgres}/bin")
    state = ctx.paths.state("postgres")
    pgdata, sockets = state / "data", state / "sockets"
    for d in (ctx.paths.data_dir, state, sockets):
        d.mkdir(parents=True, exist_ok=True)
    ctx.paths.data_dir.chmod(0o755)
    _chown(state, user)
    _chown(sockets, user)
    if not (pgdata / "PG_VERSION").exists():
        shutil.rmtree(pgdata, ignore_errors=True)
        _run_once(
            "postgres",
            [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "-E", "UTF8", "--no-locale",
             "--auth-local=trust", "--auth-host=scram-sha-256"],
            user,
        )  # fmt: skip
    hba = state / "pg_hba.conf"
    hba.write_text(configs.pg_hba_conf())
    _chown(hba, user)
    options = configs.postgres_options(ctx.settings, sockets, hba)
    _set_superuser_password(ctx, single_user_argv(bindir, pgdata, options), user)
    argv = [str(bindir / "postgres"), "-D", str(pgdata), *_option_args(options)]
    return Launch(argv=argv, cwd=state, user=user, stop_signal=signal.SIGINT)


def _option_args(options: dict[str, str]) -> list[str]:
    return [arg for key, value in options.items() for arg in ("-c", f"{key}={value}")]


def single_user_argv(bindir: Path, pgdata: Path, options: dict[str, str]) -> list[str]:
    """Single-user mode with the server's own options: after an unclean stop it runs crash recovery
    first, and recovery refuses a cluster holding logical replication slots unless it runs with
    ``wal_level=logical`` like the server (PostgreSQL's default is ``replica``)."""
    return [str(bindir / "postgres"), "--single", "-D", str(pgdata), *_option_args(options), "postgres"]


def _superuser_password(ctx: Context) -> str:
    # Generated once, kept in the stack's secrets dir like the registry's; clients read it through
    # the libpq password file written beside it (PostgresSettings.passfile), never from a command line.
    paths = ctx.paths
    paths.secrets.mkdir(parents=True, exist_ok=True)
    paths.secrets.chmod(0o700)
    secret = paths.secrets / "postgres-superuser.password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(24))
        secret.chmod(0o600)
    return secret.read_text().strip()


def _set_superuser_password(ctx: Context, single_user: list[str], user: str | None) -> None:
    """Give the superuser its password (pg_hba.conf trusts it over TCP no more) and write the libpq
    password file. Single-user mode, before the server starts: it needs no authentication, works on a
    cluster initialised before there was a password, and reads the statement from stdin, so the
    password is on no command line. Idempotent: every start sets the same password."""
    password = _superuser_password(ctx)
    uid, gid = run_as(user)
    proc = subprocess.run(
        single_user,
        input=f"ALTER ROLE postgres WITH PASSWORD '{password}';\n",
        capture_output=True,
        text=True,
        check=False,
        user=uid,
        group=gid,
        extra_groups=[] if uid is not None else None,
    )
    if proc.returncode != 0:
        # The output cannot hold the password: single-user mode does not echo its input.
        raise ServiceStartError("postgres", "setting the superuser password failed", proc.stderr[-2000:])
    passfile = ctx.settings.postgres.passfile
    assert passfile is not None, "resolved by Settings"
    passfile.parent.mkdir(parents=True, exist_ok=True)
    passfile.touch(mode=0o600, exist_ok=True)
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    passfile.write_text(configs.pgpass(ctx.settings, password))


# --- Kafka and Kafka Connect ----------------------------------------------------------------------


def _prepare_kafka(ctx: Context) -> Launch:
    state = ctx.paths.state("kafka")
    conf, data = state / "config", state / "data"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "server.properties").write_text(configs.kafka_server_properties(ctx.settings, data))
    (conf / "log4j2.xml").write_text(configs.log4j2_xml())
    classpath = f"{ctx.bundles['kafka']}/*"
    log4j = f"-Dlog4j2.configurationFile={conf / 'log4j2.xml'}"
    if not (data / "meta.properties").exists():
        # Formatting is what makes a KRaft log dir a member of one cluster: done once, with a cluster
        # id kept beside it so a re-format after a crash joins the same cluster id.
        id_file = state / "cluster.id"
        if not id_file.exists():
            id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())
        _run_once(
            "kafka",
            [_java(), log4j, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", id_file.read_text().strip(), "-c", str(conf / "server.properties")],
        )  # fmt: skip
    argv = [
        _java(),
        *_jvm_options(
            ctx.settings.stack.kafka_heap_mb, state / "tmp", _gc_log(ctx.paths, "kafka"), fixed_heap=True
        ),
        _jmx_agent(ctx, "kafka", ctx.settings.stack.kafka_jmx_port),
        log4j,
        "-cp",
        classpath,
        "kafka.Kafka",
        str(conf / "server.properties"),
    ]
    return Launch(argv=argv, cwd=state)


def _prepare_connect(ctx: Context) -> Launch:
    state = ctx.paths.state("connect")
    conf = state / "config"
    conf.mkdir(parents=True, exist_ok=True)
    ctx.paths.secrets.mkdir(parents=True, exist_ok=True)
    ctx.paths.secrets.chmod(0o700)
    # The folder the worker's file/dir config providers are allowed to read: Kafka refuses to start
    # when an allowed path does not exist, and on a fresh machine no source has written a secret yet.
    worker_secrets = ctx.settings.connect.worker_secrets_dir
    if worker_secrets is not None:
        worker_secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    plugin_path = [ctx.bundles["debezium-postgres"], ctx.bundles["apicurio-converter"]]
    (conf / "connect-distributed.properties").write_text(
        configs.connect_properties(ctx.settings, plugin_path)
    )
    (conf / "log4j2.xml").write_text(configs.log4j2_xml())
    argv = [
        _java(),
        *_jvm_options(
            ctx.settings.stack.connect_heap_mb, state / "tmp", _gc_log(ctx.paths, "connect"), fixed_heap=True
        ),
        _jmx_agent(ctx, "connect", ctx.settings.stack.connect_jmx_port),
        f"-Dlog4j2.configurationFile={conf / 'log4j2.xml'}",
        "-cp",
        f"{ctx.bundles['kafka']}/*",
        "org.apache.kafka.connect.cli.ConnectDistributed",
        str(conf / "connect-distributed.properties"),
    ]
    return Launch(argv=argv, cwd=state)


# --- Apicurio Registry ----------------------------------------------------------------------------

REGISTRY_DB = "apicurio"
REGISTRY_ROLE = "apicurio"


def _registry_password(paths: StackPaths) -> str:
    # Generated once and kept in the stack's secrets dir: the registry's role authenticates with SCRAM
    # like any non-superuser, and the password never appears on a command line.
    paths.secrets.mkdir(parents=True, exist_ok=True)
    paths.secrets.chmod(0o700)
    secret = paths.secrets / "registry-db.password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(24))
        secret.chmod(0o600)
    return secret.read_text().strip()


def _ensure_registry_database(settings: Settings, password: str) -> None:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [REGISTRY_ROLE]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(REGISTRY_ROLE), sql.Literal(password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [REGISTRY_DB]).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(REGISTRY_DB), sql.Identifier(REGISTRY_ROLE)
                )
            )


def _prepare_registry(ctx: Context) -> Launch:
    st = ctx.settings.stack
    state = ctx.paths.state("registry")
    state.mkdir(parents=True, exist_ok=True)
    password = _registry_password(ctx.paths)
    _ensure_registry_database(ctx.settings, password)
    runner = next(ctx.bundles["apicurio-registry"].glob("apicurio-registry-app-*-runner.jar"), None)
    if runner is None:
        raise ServiceStartError(
            "registry", f"no apicurio-registry-app-*-runner.jar in {ctx.bundles['apicurio-registry']}"
        )
    pg = ctx.settings.postgres
    properties = configs.registry_properties(
        ctx.settings, f"jdbc:postgresql://{pg.host}:{pg.port}/{REGISTRY_DB}", REGISTRY_ROLE, state / "tmp"
    )
    argv = [
        _java(),
        *_jvm_options(st.registry_heap_mb, state / "tmp", _gc_log(ctx.paths, "registry")),
        *(f"-D{k}={v}" for k, v in properties.items()),
        "-jar",
        str(runner),
    ]
    return Launch(argv=argv, cwd=state, env={"APICURIO_DATASOURCE_PASSWORD": password})


# --- Cassandra ------------------------------------------------------------------------------------

# From Cassandra's conf/jvm17-server.options: the JDK internals Cassandra reaches into on Java 17.
_CASSANDRA_JDK17 = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]  # fmt: skip


def _prepare_cassandra(ctx: Context) -> Launch:
    state = ctx.paths.state("cassandra")
    conf = state / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "triggers"):
        (state / sub).mkdir(exist_ok=True)
    (conf / "cassandra.yaml").write_text(configs.cassandra_yaml(ctx.settings, state))
    (conf / "logback.xml").write_text(configs.logback_xml())
    libs = ctx.bundles["cassandra"]
    heap = ctx.settings.stack.cassandra_heap_mb
    jamm = sorted(libs.glob("jamm-*.jar"))
    argv = [
        # Cassandra mlockall()s its whole address space when it may, which would make every byte of
        # heap resident from the start; a zero memlock limit makes it skip that (it logs and goes on).
        "prlimit",
        "--memlock=0:0",
        _java(),
        f"-Xms{heap}m",  # Cassandra sizes memtables and caches from the heap at start: fix it
        f"-Xmx{heap}m",
        "-Xss256k",
        "-XX:+UseG1GC",
        _gc_log(ctx.paths, "cassandra"),
        "-XX:MaxTenuringThreshold=1",
        "-XX:MaxMetaspaceSize=256m",
        "-XX:MaxDirectMemorySize=512m",
        "-XX:+ExitOnOutOfMemoryError",
        *_CASSANDRA_JDK17,
        # jamm measures object sizes for memtable accounting; the distribution loads it as an agent.
        *(f"-javaagent:{j}" for j in jamm[:1]),
        _jmx_agent(ctx, "cassandra", ctx.settings.stack.cassandra_jmx_port),
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dlogback.configurationFile={conf / 'logback.xml'}",
        f"-Dcassandra.logdir={state / 'logs'}",
        f"-Dcassandra.storagedir={state}",
        "-Dcassandra-foreground=yes",
        # A single seed node has no gossip peers to wait for.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        # RING_DELAY (30 s) waits for peers' tokens before a new node picks its own; there are none.
        "-Dcassandra.ring_delay_ms=1000",
        f"-Dcassandra.triggers_dir={state / 'triggers'}",
        f"-Djava.io.tmpdir={state / 'tmp'}",
        "-cp",
        f"{conf}:{libs}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]
    (state / "tmp").mkdir(exist_ok=True)
    return Launch(argv=argv, cwd=state)


# --- Prometheus -----------------------------------------------------------------------------------


def _prepare_prometheus(ctx: Context) -> Launch:
    st = ctx.settings.stack
    state = ctx.paths.state("prometheus")
    targets, rules = state / "targets", state / "rules"
    targets.mkdir(parents=True, exist_ok=True)
    rules.mkdir(parents=True, exist_ok=True)
    config = state / "prometheus.yml"
    shutil.copyfile(COMPOSE_DIR / "config" / "prometheus.yml", config)
    for name, text in configs.prometheus_targets(ctx.settings).items():
        (targets / name).write_text(text + "\n")
    replicators = targets / "replicator.json"
    if not replicators.exists():
        replicators.write_text("[]\n")  # the exporter fills it (scv/exporter/discovery.py)
    (rules / "scv-alerts.yml").write_text(render_rules(PROFILES[st.alert_rules]))
    # promtool catches a broken config or rule file before start, with a message naming the line.
    _run_once("prometheus", ["promtool", "check", "config", str(config)])
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={state / 'tsdb'}",
        f"--web.listen-address={st.host}:{st.prometheus_port}",
        "--storage.tsdb.retention.time=3d",
    ]
    # GOMEMLIMIT bounds the Go heap: scraping a handful of targets needs far less.
    return Launch(argv=argv, cwd=state, env={"GOMEMLIMIT": "256MiB"})


# --- the pipeline exporter ------------------------------------------------------------------------


def _prepare_exporter(ctx: Context) -> Launch:
    # Part of the stack, not of a test or a replicator: Prometheus finds the replicators through it and
    # its lag must keep moving when every replicator is stopped. It runs the project's own code with the
    # interpreter that runs `scv stack up`.
    state = ctx.paths.state("exporter")
    state.mkdir(parents=True, exist_ok=True)
    targets = ctx.paths.state("prometheus") / "targets" / "replicator.json"
    env = configs.exporter_environment(ctx.settings, targets)
    return Launch(argv=[sys.executable, "-m", "scv.exporter"], cwd=state, env=env)


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres", "PostgreSQL (logical WAL)", (), "postgres",
        health.postgres_status_dsn, _prepare_postgres, health.check_postgres,
    ),
    Service(
        "kafka", "Kafka broker+controller (KRaft)", (), "kafka",
        lambda s: s.kafka.bootstrap_servers, _prepare_kafka, health.check_kafka,
    ),
    Service(
        "connect", "Kafka Connect + Debezium", ("kafka",), "connect",
        lambda s: s.connect.url, _prepare_connect, health.check_connect,
    ),
    Service(
        "registry", "Apicurio Registry (ccompat)", ("postgres",), "registry",
        lambda s: s.registry.url, _prepare_registry, health.check_registry,
    ),
    Service(
        "cassandra", "Cassandra (CQL store)", (), "scylla",
        lambda s: f"{s.store.contact_points[0]}:{s.store.port}", _prepare_cassandra, health.check_cassandra,
    ),
    Service(
        "prometheus", "Prometheus", (), "prometheus",
        lambda s: f"http://{s.stack.host}:{s.stack.prometheus_port}",
        _prepare_prometheus, health.check_prometheus,
    ),
    Service(
        "exporter", "Pipeline exporter (scv exporter)", ("kafka", "prometheus"), "exporter",
        lambda s: f"http://{s.exporter.host}:{s.exporter.port}/metrics",
        _prepare_exporter, health.check_exporter,
    ),
)  # fmt: skip


def service_by_name(name: str) -> Service:
    for svc in SERVICES:
        if svc.name == name:
            return svc
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")
