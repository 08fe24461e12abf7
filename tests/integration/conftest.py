"""Fixtures for the replicator's integration tests: a real source database onboarded through the real
Debezium connector, and a real replicator process consuming it into the real store."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import psycopg
import pytest
from cassandra.cluster import Session

from connectors.onboard import add_source, remove_source
from connectors.spec import SourceSpec, parse_spec
from scv.api.config import client_settings
from scv.client import CustomerNotFound, CustomerView, CustomerViewClient
from scv.config.settings import Settings
from store.migrate import migrate

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def wait_for(
    probe: Callable[[], T | None], timeout_s: float = 90.0, what: str = "condition", every_s: float = 0.2
) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last value: {last!r})")


def scrape(port: int) -> str:
    """The metrics page of the replicator on ``port``; fails the test when it does not answer (a
    helper that read "no answer" as zero would let "nothing was dead-lettered" pass with the
    replicator down)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the metrics endpoint 127.0.0.1:{port} does not answer ({exc!r}); is the replicator up?")
    return response.text


def metric(port: int, series: str) -> float:
    """The sum of the samples of ``series`` (a name, or a name with its first labels), 0 when the
    endpoint answers without it (a labelled counter appears with its first increment)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in scrape(port).splitlines() if line.startswith(series))


def wait_metrics_up(port: int, timeout_s: float = 60.0) -> None:
    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout_s=timeout_s, what=f"the metrics endpoint on port {port}")


ReaderFactory = Callable[[str], CustomerViewClient]


@pytest.fixture(scope="session")
def reader_for(stack: Settings, store_session: Session) -> Iterator[ReaderFactory]:
    """Factory: the read client of one keyspace (one client per keyspace for the whole session)."""
    clients: dict[str, CustomerViewClient] = {}

    def client(keyspace: str) -> CustomerViewClient:
        if keyspace not in clients:
            clients[keyspace] = CustomerViewClient(replace(client_settings(stack), keyspace=keyspace))
        return clients[keyspace]

    yield client
    for opened in clients.values():
        opened.close()


@pytest.fixture(scope="session")
def reader(stack: Settings, reader_for: ReaderFactory) -> CustomerViewClient:
    return reader_for(stack.store.keyspace)


@dataclass
class ReplicatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    group_id: str

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def start_replicator(
    tmp_dir: Path, metrics_port: int, group_id: str | None = None, extra_env: dict[str, str] | None = None
) -> ReplicatorProcess:
    group = group_id or f"scv-test-{uuid.uuid4().hex[:8]}"
    log_path = tmp_dir / f"replicator-{group}-{metrics_port}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": group,
        "SCV_CONSUMER__METRICS_PORT": str(metrics_port),
        "SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5",
        "SCV_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "consumer"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return ReplicatorProcess(process, log_path, metrics_port, group)


@pytest.fixture(scope="session")
def replicator(
    stack: Settings, store_session: Session, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReplicatorProcess]:
    """One replicator for the session, consuming every registered source (as in production)."""
    handle = start_replicator(tmp_path_factory.mktemp("replicator"), metrics_port=9410)
    time.sleep(0.5)
    if handle.process.poll() is not None:
        pytest.fail(f"replicator exited at start:\n{handle.log_tail()}")
    yield handle
    code = handle.stop()
    assert code == 0, f"replicator did not stop cleanly on SIGTERM (exit {code}):\n{handle.log_tail()}"


@dataclass
class Isolated:
    """A keyspace, a dead-letter topic and a consumer group of a test's own: what its replicator
    parks, holds and applies is its own (pass ``env()`` to ``start_replicator``)."""

    keyspace: str
    dead_letter_topic: str
    group: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "SCV_STORE__KEYSPACE": self.keyspace,
            "SCV_CONSUMER__DEAD_LETTER_TOPIC": self.dead_letter_topic,
            **extra,
        }


@pytest.fixture
def isolated(stack: Settings, store_session: Session) -> Iterator[Isolated]:
    from scv.kafka.admin import KafkaAdmin

    suffix = uuid.uuid4().hex[:8]
    own = Isolated(f"scv_iso_{suffix}", f"scv.dead-letter.test-{suffix}", f"scv-iso-{suffix}")
    migrate(store_session, own.keyspace, stack.store.replication_factor, stack.store.local_dc)
    yield own
    store_session.execute(f"DROP KEYSPACE IF EXISTS {own.keyspace}", timeout=120)
    with KafkaAdmin(stack.kafka.bootstrap_servers) as kafka:
        kafka.delete_topics([own.dead_letter_topic])


@dataclass
class SourceDatabase:
    """A system of record created by a test, onboarded through Debezium like any DBA's source."""

    name: str
    dsn: str
    spec: SourceSpec

    def execute(self, sql: str, params: Any = None) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql, params)

    def fetch(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


class SourceFactory(Protocol):
    def __call__(self, schema_sql: str, tables_yaml: str, extra_yaml: str = "") -> SourceDatabase: ...


@pytest.fixture(scope="module")
def source_database(stack: Settings) -> Iterator[SourceFactory]:
    """Factory: ``source_database(ddl_and_seed_sql, tables_yaml)`` creates a fresh database, a CDC role
    with a random password (only in this process's environment), and onboards it with `add_source`."""
    created: list[SourceDatabase] = []

    def create(schema_sql: str, tables_yaml: str, extra_yaml: str = "") -> SourceDatabase:
        name = f"t{uuid.uuid4().hex[:10]}"
        role = f"cdc_{name}"
        password = secrets.token_urlsafe(16)
        env_var = f"SCV_TEST_{name.upper()}_PASSWORD"
        os.environ[env_var] = password
        with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            conn.execute(
                f"CREATE ROLE {role} LOGIN REPLICATION PASSWORD %s".replace("%s", _literal(password))
            )
        dsn = stack.postgres.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(schema_sql)
            conn.execute(
                "CREATE TABLE public.scv_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, "
                "data varchar(2048))"
            )
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
            conn.execute(f"GRANT INSERT, UPDATE, DELETE ON public.scv_signal TO {role}")
            conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO {role}')
            tables = conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            for (table,) in tables:
                conn.execute(f"ALTER TABLE {table} OWNER TO {role}")
        spec_text = (
            f"name: {name}\n"
            f"database: {{host: 127.0.0.1, port: {stack.postgres.port}, dbname: {name}, user: {role}, "
            f"password_env: {env_var}}}\n"
            f"heartbeat_interval_ms: 1000\n"
            f"{extra_yaml}"
            f"tables:\n{tables_yaml}"
        )
        spec = parse_spec(spec_text, f"<test source {name}>")
        database = SourceDatabase(name, dsn, spec)
        created.append(database)
        add_source(spec, stack, timeout_s=180)
        return database

    yield create

    for database in created:
        remove_source(database.name, stack)
        with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


# A source with one members table, which several modules replicate with replicators of their own.
MEMBERS_SCHEMA = (
    "CREATE TABLE public.members (member_id bigint PRIMARY KEY, customer_id bigint NOT NULL, name text);"
)
MEMBERS_TABLES = "  public.members: {kind: member, customer_key: customer_id}\n"


@pytest.fixture(scope="module")
def members(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    """The members source of the module (its own database, onboarded once per module)."""
    return source_database(MEMBERS_SCHEMA, MEMBERS_TABLES)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def view_of(reader: CustomerViewClient, customer_id: str) -> CustomerView | None:
    try:
        return reader.get_view(customer_id)
    except CustomerNotFound:
        return None


def attributes(view: CustomerView | None, kind: str) -> dict[str, dict[str, Any]]:
    """entity id -> attributes for one kind of a view (empty when absent)."""
    if view is None:
        return {}
    return {entity.id: entity.attributes for entity in view.sections.get(kind, [])}
