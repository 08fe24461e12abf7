"""What the read benchmark reads, and the load it reads under (bench/reads.py).

    with ReadBench.up(settings, sizes={10: 20, 100: 20, 1000: 10}, many=500, rate=500) as bench:
        bench.customers[100]    # ids of customers with 100 entities each
        bench.api_url           # `scv serve` on the bench keyspace, bench.token its bearer token

The views are built the way production builds them: rows in a PostgreSQL system of record, captured
by Debezium, applied by a real `scv consume` into a keyspace of their own. While the benchmark reads,
pgbench keeps changing those same customers' rows at a steady rate (a Poisson mean, server-side
SQL, so the load generator costs little CPU) and the replicator keeps applying them: the reads
meet a store that is being written, compacted and announced about, as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import psycopg
from rich.console import Console

from bench.freshness import wait_for_compactions
from connectors.onboard import add_source, remove_source
from connectors.spec import parse_spec
from demo.pgbench import pgbench_path
from scv.api.config import client_settings
from scv.client import ClientSettings, CustomerViewClient, ViewClientError
from scv.config.settings import Settings
from store.migrate import migrate
from store.session import open_session

__all__ = ["ReadBench"]

REPO = Path(__file__).resolve().parents[1]
API_PORT = 8790
METRICS_PORT = 9460

SCHEMA = """
CREATE TABLE public.profiles (customer_id text PRIMARY KEY, name text NOT NULL, segment text,
    born date, balance numeric(14, 2), prefs jsonb);
CREATE TABLE public.interactions (item_id bigint PRIMARY KEY, customer_id text NOT NULL, channel text,
    at timestamptz NOT NULL, amount numeric(12, 2), note text, payload jsonb);
"""
TABLES = """\
  public.profiles: {kind: profile, customer_key: customer_id}
  public.interactions: {kind: interaction, customer_key: customer_id}
"""


@dataclass
class ReadBench:
    settings: Settings  # with the bench keyspace
    customers: dict[int, list[str]]  # entities per customer -> ids
    many: list[str]  # 10-entity customers for the many-customer reads
    token: str
    api_url: str
    api_pid: int
    items: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def client_settings(self) -> ClientSettings:
        # Under 32 reads of 1,000-entity partitions in flight on a shared 2-core box, a read can queue
        # for seconds: the benchmark measures that wait instead of failing it.
        return replace(client_settings(self.settings), request_timeout_s=30.0)

    @classmethod
    @contextlib.contextmanager
    def up(
        cls,
        settings: Settings,
        sizes: dict[int, int],
        many: int,
        rate: float,
        seconds: float,
        console: Console,
    ) -> Iterator[ReadBench]:
        tag = uuid.uuid4().hex[:6]
        keyspace, database = f"scv_bench_reads_{tag}", f"benchreads{tag}"
        bench_settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"keyspace": keyspace})}
        )
        logs = Path(tempfile.mkdtemp(prefix="scv-bench-reads-"))
        processes: list[subprocess.Popen[bytes]] = []
        with open_session(settings.store) as session:
            migrate(session, keyspace, settings.store.replication_factor, settings.store.local_dc)
        try:
            customers, many_ids, items = _seed(settings, database, sizes, many)
            console.print(
                f"  seeded {items:,} rows in PostgreSQL database {database}; onboarding through Debezium"
            )
            _onboard(bench_settings, database)
            processes.append(_replicator(keyspace, tag, logs))
            _wait_applied(client_settings(bench_settings), customers, many_ids, console)
            with open_session(settings.store) as session:
                settled = wait_for_compactions(session, quiet_s=5.0, timeout_s=120.0)
            console.print(f"  store settled after {settled:.0f} s")
            token = secrets.token_urlsafe(24)
            api = _api(keyspace, token, logs)
            processes.append(api)
            api_url = f"http://127.0.0.1:{API_PORT}"
            _wait_ready(api_url, api)
            processes.append(_pgbench(settings, database, items, rate, seconds, logs))
            time.sleep(5.0)  # the replicator's steady state: pgbench connected, batches flowing
            console.print(
                f"  replicator applying pgbench's {rate:,.0f} changes/s to the same customers; logs in {logs}"
            )
            yield cls(bench_settings, customers, many_ids, token, api_url, api.pid, items, processes)
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(60)
                    if process.poll() is None:
                        process.kill()
            with contextlib.suppress(Exception):
                remove_source(database, bench_settings)
            with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                conn.execute(f"DROP ROLE IF EXISTS cdc_{database}")
            with open_session(settings.store) as session:
                session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


def _seed(
    settings: Settings, database: str, sizes: dict[int, int], many: int
) -> tuple[dict[int, list[str]], list[str], int]:
    customers = {size: [f"r{size}-{n:04d}" for n in range(count)] for size, count in sizes.items()}
    many_ids = [f"m-{n:05d}" for n in range(many)]
    plan = [(cid, size) for size, ids in customers.items() for cid in ids] + [(cid, 10) for cid in many_ids]
    with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    items = 0
    with psycopg.connect(settings.postgres.dsn(database)) as conn:
        conn.execute(SCHEMA)
        with conn.cursor().copy(
            "COPY profiles (customer_id, name, segment, born, balance, prefs) FROM STDIN"
        ) as copy:
            for cid, _size in plan:
                copy.write_row(
                    (cid, f"Customer {cid}", "retail", "1980-05-17", "1234.56", '{"lang": "en", "sms": true}')
                )
        with conn.cursor().copy(
            "COPY interactions (item_id, customer_id, channel, at, amount, note, payload) FROM STDIN"
        ) as copy:
            for cid, size in plan:
                for _ in range(size - 1):
                    items += 1
                    copy.write_row(
                        (
                            items,
                            cid,
                            "web",
                            "2026-11-30 10:00:00+00",
                            "19.90",
                            "asked about a card",
                            '{"score": 3}',
                        )
                    )
    return customers, many_ids, items


def _onboard(settings: Settings, database: str) -> None:
    role, password = f"cdc_{database}", secrets.token_urlsafe(16)
    env_var = f"SCV_BENCH_{database.upper()}_PASSWORD"
    os.environ[env_var] = password
    with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN REPLICATION PASSWORD '{password}'")
    with psycopg.connect(settings.postgres.dsn(database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.scv_signal "
            "(id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))"
        )
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT INSERT, UPDATE, DELETE ON public.scv_signal TO {role}")
        conn.execute(f'GRANT CREATE ON DATABASE "{database}" TO {role}')
        for table in ("profiles", "interactions", "scv_signal"):
            conn.execute(f"ALTER TABLE public.{table} OWNER TO {role}")
    spec = parse_spec(
        f"name: {database}\n"
        f"database: {{host: 127.0.0.1, port: {settings.postgres.port}, dbname: {database}, user: {role}, "
        f"password_env: {env_var}}}\n"
        f"tables:\n{TABLES}",
        f"<bench source {database}>",
    )
    add_source(spec, settings, timeout_s=300)


def _replicator(keyspace: str, tag: str, logs: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_STORE__KEYSPACE": keyspace,
        "SCV_CONSUMER__GROUP_ID": f"bench-reads-{tag}",
        "SCV_CONSUMER__METRICS_PORT": str(METRICS_PORT),
        "SCV_LOG_FORMAT": "json",
        "SCV_LOG_LEVEL": "WARNING",
    }
    with (logs / "replicator.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "consumer"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _api(keyspace: str, token: str, logs: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_STORE__KEYSPACE": keyspace,
        "SCV_API__PORT": str(API_PORT),
        "SCV_API__TOKENS": json.dumps([{"name": "bench", "token": token}]),
        "SCV_API__BULK_MAX_IDS": "1000",
        "SCV_LOG_LEVEL": "WARNING",
    }
    with (logs / "api.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scv", "serve"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _pgbench(
    settings: Settings, database: str, items: int, rate: float, seconds: float, logs: Path
) -> subprocess.Popen[bytes]:
    script = logs / "update.sql"
    script.write_text(
        f"\\set id random(1, {items})\n"
        "UPDATE interactions SET amount = amount + 1, at = now() WHERE item_id = :id;\n"
    )
    pg = settings.postgres
    command = [
        str(pgbench_path()), "-n", "-f", str(script), "--rate", str(rate), "-T", str(int(seconds)),
        "-c", "2", "-j", "1", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, database,
    ]  # fmt: skip
    with (logs / "pgbench.log").open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def _wait_applied(
    settings: ClientSettings, customers: dict[int, list[str]], many: list[str], console: Console
) -> None:
    expected = {cid: size for size, ids in customers.items() for cid in ids} | dict.fromkeys(many, 10)
    deadline = time.monotonic() + 600
    with CustomerViewClient(settings) as client:
        while time.monotonic() < deadline:
            try:
                views = client.get_many(expected)
            except ViewClientError:
                views = {}
            done = sum(
                1 for cid, view in views.items() if view is not None and view.entity_count == expected[cid]
            )
            console.print(
                f"  replicator applying the snapshot: {done:,}/{len(expected):,} customers", end="\r"
            )
            if done == len(expected):
                console.print()
                return
            time.sleep(1)
    raise RuntimeError("the snapshot was not applied within 10 minutes; see the replicator log")


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scv serve exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("scv serve did not become ready within 60 s")
