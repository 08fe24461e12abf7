"""The fault-injection suite's world: the three demo systems of record (seeded small, under their own
names), onboarded through Debezium, a supervised two-process replicator, and the demo workload
driving changes into them for the whole of each case.

Every case injects one fault under that load and ends the same way: the replicator catches up and
`scv verify --all` over the three sources finds no drift. The cases restart shared services of the
local stack, so the suite runs after every other test (`make test` orders it last) and restores
each service before it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml
from cassandra.cluster import Session

from connectors.onboard import add_source, remove_source
from connectors.spec import SourceSpec, parse_spec
from demo.exceptions import DemoError
from demo.model import database_names, published_tables
from demo.roles import ensure_publication
from demo.secrets import export_demo_passwords
from demo.seed import seed_demo
from demo.workload import run_workload
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin
from scv.verify.reconcile import Progress, VerifyOptions, verify
from tests.integration.conftest import REPO, wait_for

_FAULTS_DIR = Path(__file__).parent
SPECS = REPO / "connectors" / "sources"
# Short names, unique per run: f<6 hex>_crm etc. (a source name is at most 41 characters).
PREFIX = f"f{uuid.uuid4().hex[:6]}_"
CUSTOMERS = 300


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _FAULTS_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.faults)


def _spec(settings: Settings, source: str) -> SourceSpec:
    """The demo's spec of ``source``, renamed to this run's databases and source names."""
    data = yaml.safe_load((SPECS / f"{source}.yaml").read_text())
    data["name"] = f"{PREFIX}{source}"
    data["database"]["dbname"] = database_names(PREFIX)[source]
    data["database"]["port"] = settings.postgres.port
    data["heartbeat_interval_ms"] = 1000
    for table in data["tables"].values():
        key = table["customer_key"]
        if isinstance(key, dict) and key.get("via", "").count(".") == 2:
            key["via"] = f"{PREFIX}{key['via']}"
    return parse_spec(yaml.safe_dump(data), f"<fault suite {source}>")


@dataclass
class Replicator:
    process: subprocess.Popen[bytes]
    group: str
    log: Path

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Workload:
    """The demo workload in a background thread, restarted whenever a fault interrupts it (a
    PostgreSQL restart fails its sessions): changes keep coming for the whole case."""

    settings: Settings
    rate: float
    stop: threading.Event = field(default_factory=threading.Event)
    changes: int = 0
    interruptions: int = 0
    _thread: threading.Thread | None = None

    def __enter__(self) -> Workload:
        self._thread = threading.Thread(target=self._run, name="fault-workload", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        assert self._thread is not None
        self._thread.join(60)

    def _run(self) -> None:
        seed = 0
        while not self.stop.is_set():
            seed += 1
            try:
                stats = run_workload(
                    self.settings, rate=self.rate, duration_s=2.0, seed=seed, database_prefix=PREFIX
                )
                self.changes += stats.changes
            except DemoError:
                self.interruptions += 1
                self.stop.wait(1.0)


@pytest.fixture(scope="package")
def demo_sources(stack: Settings) -> Iterator[list[SourceSpec]]:
    seed_demo(stack, customers=CUSTOMERS, seed=5, database_prefix=PREFIX)
    export_demo_passwords(stack)
    specs = [_spec(stack, source) for source in ("crm", "core", "care")]
    for spec, source in zip(specs, ("crm", "core", "care"), strict=True):
        with psycopg.connect(stack.postgres.dsn(spec.database.dbname), autocommit=True) as conn:
            ensure_publication(conn, spec.names.publication, published_tables(source))
        add_source(spec, stack, timeout_s=300)
    yield specs
    for spec in reversed(specs):
        remove_source(spec.name, stack)
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as admin:
        for dbname in database_names(PREFIX).values():
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="package")
def replicator(
    stack: Settings, demo_sources: list[SourceSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicator]:
    group = f"scv-faults-{uuid.uuid4().hex[:6]}"
    log = tmp_path_factory.mktemp("faults") / "replicator.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_CONSUMER__GROUP_ID": group,
        "SCV_CONSUMER__METRICS_PORT": "9480",
        "SCV_CONSUMER__REGISTRATIONS_POLL_S": "0.5",
        "SCV_LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scv", "consume", "--processes", "2"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    handle = Replicator(process, group, log)
    wait_for(lambda: len(handle.worker_pids()) == 2, what="two replicator workers")
    yield handle
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def workload(stack: Settings, replicator: Replicator) -> Iterator[Workload]:
    with Workload(stack, rate=40.0) as running:
        time.sleep(3)  # under load before the fault
        yield running


def caught_up(settings: Settings, group: str, specs: list[SourceSpec], timeout_s: float = 240) -> None:
    topics = [spec.names.topic(table) for spec in specs for table in spec.tables]
    with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
        wait_for(
            lambda: kafka.group_lag(group, topics) == 0,
            timeout_s=timeout_s,
            what="replicator caught up",
            every_s=1.0,
        )


def assert_no_drift(settings: Settings, session: Session, group: str, specs: list[SourceSpec]) -> None:
    """The case's verdict: after catching up, `scv verify --all` over the three sources is clean."""
    caught_up(settings, group, specs)
    findings = []
    for spec in specs:
        options = VerifyOptions(source=spec.name, group=group, settle_timeout_s=120)
        findings += verify(settings, session, options, Progress()).findings
    assert not findings, "drift after the fault:\n" + "\n".join(f.describe() for f in findings[:20])


@pytest.fixture
def extra_source(stack: Settings, store_session: Session) -> Iterator[Callable[[], str]]:
    """A fourth source onboarded while the workload runs, filled, then removed with its view rows
    (`scv sources remove --purge-view`): returns its name once the view is clean of it again."""
    from connectors.onboard import remove_source_report
    from scv.verify.sides import ViewSide

    name = f"{PREFIX}extra"
    created = False

    def run() -> str:
        nonlocal created
        with psycopg.connect(stack.postgres.dsn(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created = True
        password = uuid.uuid4().hex
        os.environ["SCV_FAULTS_EXTRA_PASSWORD"] = password
        with psycopg.connect(stack.postgres.dsn(name), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.loyalty (card_id bigint PRIMARY KEY, customer_id bigint NOT NULL, "
                "points int NOT NULL); CREATE TABLE public.scv_signal (id varchar(42) PRIMARY KEY, "
                "type varchar(32) NOT NULL, data varchar(2048))"
            )
            conn.execute(f"CREATE ROLE cdc_{name} LOGIN REPLICATION PASSWORD '{password}'")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO cdc_{name}")
            conn.execute(f"GRANT INSERT, UPDATE, DELETE ON public.scv_signal TO cdc_{name}")
            conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO cdc_{name}')
            conn.execute(f"ALTER TABLE public.loyalty OWNER TO cdc_{name}")
            conn.execute(f"ALTER TABLE public.scv_signal OWNER TO cdc_{name}")
            conn.execute("INSERT INTO loyalty SELECT g, g % 300 + 1, g FROM generate_series(1, 500) g")
        spec = parse_spec(
            f"name: {name}\ndatabase: {{host: 127.0.0.1, port: {stack.postgres.port}, dbname: {name}, "
            f"user: cdc_{name}, password_env: SCV_FAULTS_EXTRA_PASSWORD}}\nheartbeat_interval_ms: 1000\n"
            "tables:\n  public.loyalty: {kind: loyalty, customer_key: customer_id}\n",
            "<fault suite extra source>",
        )
        add_source(spec, stack, timeout_s=180)
        with psycopg.connect(stack.postgres.dsn(name), autocommit=True) as conn:
            conn.execute("UPDATE loyalty SET points = points + 1 WHERE card_id <= 100")
        view = ViewSide(store_session, stack.store.keyspace)

        def rows_of_extra() -> int:
            _sums, _kept, others = view.scan({}, 1)
            return sum(count for (source, _table), count in others.items() if source == name)

        wait_for(lambda: rows_of_extra() == 500, timeout_s=120, what="the extra source's rows in the view")
        remove_source_report(name, stack, purge_view=True, delete_topics_too=True)
        wait_for(lambda: rows_of_extra() == 0, timeout_s=60, what="the extra source purged from the view")
        return name

    yield run
    if created:
        with psycopg.connect(stack.postgres.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "cdc_{name}"')
