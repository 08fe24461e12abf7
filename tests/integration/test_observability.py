"""SREs see trouble before users do: the exporter, the JMX agents, the replicator's health and lag,
the alert rules in the real Prometheus, the dashboard's series and `scv status`, on the real stack.

The native stack's Prometheus loads the alert rules with the FAST thresholds (compose/alerts.py:
seconds instead of minutes), so an alert can be watched firing here; the shipped production rules
are the same expressions (tests/unit/test_alert_rules.py). Faults are injected into this module's
own sources, connectors and replicators only: shared services are never stopped.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cassandra.cluster import Session
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from compose.alerts import FAST
from compose.dashboard import dashboard, panel_queries, series_names
from compose.native.paths import StackPaths
from connectors.connect import ConnectClient
from scv.config.settings import Settings
from tests.integration.conftest import (
    REPO,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    start_replicator,
    wait_for,
)
from tests.integration.faults import FaultyProxy

SCHEMA = """
CREATE TABLE public.customers (customer_id bigint PRIMARY KEY, name text);
CREATE TABLE public.orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, note text);
INSERT INTO public.customers VALUES (1, 'first customer');
"""
TABLES = """\
  public.customers: {kind: profile, customer_key: customer_id}
  public.orders: {kind: order, customer_key: customer_id}
"""


# --- helpers -------------------------------------------------------------------------------------


def _samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return []
    return [
        (s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]


def _exporter_view_of(stack: Settings, group: str) -> str:
    """The exporter's series naming ``group`` and the end of its log."""
    try:
        text = httpx.get(f"http://{stack.exporter.host}:{stack.exporter.port}/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        text = f"(the exporter did not answer: {exc})"
    series = [line for line in text.splitlines() if group in line or line.startswith("scv_exporter_")]
    log = StackPaths.of(stack.stack).log("exporter").read_text(errors="replace").splitlines()
    return "\n".join(["exporter series:", *series[:60], "exporter log, last lines:", *log[-30:]])


def exporter_value(stack: Settings, name: str, **labels: str) -> float | None:
    """The pipeline exporter's current value of ``name`` for the series matching ``labels``."""
    url = f"http://{stack.exporter.host}:{stack.exporter.port}/metrics"
    for sample, have, value in _samples(url):
        if sample == name and all(have.get(k) == v for k, v in labels.items()):
            return value
    return None


def replicator_value(port: int, name: str, **labels: str) -> float | None:
    found = [
        v
        for s, have, v in _samples(f"http://127.0.0.1:{port}/metrics")
        if s == name and all(have.get(k) == x for k, x in labels.items())
    ]
    return max(found) if found else None


def status_code(url: str) -> int:
    """The HTTP status of a GET, 0 when nothing answers (yet)."""
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def prometheus(stack: Settings, path: str, **params: str) -> Any:
    response = httpx.get(f"{stack.exporter.prometheus_url}{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def firing(stack: Settings, alertname: str, **labels: str) -> list[dict[str, str]]:
    return [
        a["labels"]
        for a in prometheus(stack, "/api/v1/alerts")["alerts"]
        if a["state"] == "firing"
        and a["labels"].get("alertname") == alertname
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def scv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from scv.cli import main; main()", *args],
        cwd=REPO,
        # Wide enough that no line of the screen wraps inside a command.
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status_of(source: str, group: str) -> tuple[int, dict[str, Any]]:
    """`scv status --json`: its exit code and the document's entry for ``source``."""
    proc = scv("status", "--json", "--group", group)
    document = json.loads(proc.stdout)
    entry = next((s for s in document["sources"] if s["source"] == source), None)
    assert entry is not None, proc.stdout + proc.stderr
    return proc.returncode, entry


@contextmanager
def steady_inserts(db: SourceDatabase, every_s: float = 0.05, limit_s: float = 180.0) -> Iterator[None]:
    """Orders inserted into ``db`` every ``every_s`` until the block ends (bounded by ``limit_s``)."""
    stop = threading.Event()

    def run() -> None:
        deadline = time.monotonic() + limit_s
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            while not stop.is_set() and time.monotonic() < deadline:
                conn.execute("INSERT INTO orders VALUES (%s, 1, 'load')", (random.randint(10**9, 10**15),))
                stop.wait(every_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(source_database: SourceFactory) -> SourceDatabase:
    """A replicated source: lag, dead letters and the dashboard are watched on it."""
    return source_database(SCHEMA, TABLES)


@pytest.fixture(scope="module")
def capture(source_database: SourceFactory) -> SourceDatabase:
    """A source whose connector this module pauses, stops and breaks."""
    return source_database(SCHEMA, TABLES)


@pytest.fixture(scope="module")
def watched(
    stack: Settings, store_session: Session, shop: SourceDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReplicatorProcess]:
    """A replicator of its own group, found by Prometheus through the exporter."""
    handle = start_replicator(
        tmp_path_factory.mktemp("watched"), metrics_port=9441, group_id=f"scv-watched-{uuid.uuid4().hex[:6]}"
    )
    wait_for(
        lambda: exporter_value(stack, "scv_consumer_group_members", group=handle.group_id),
        timeout_s=90,
        what="the watched replicator in its group, as the exporter sees it",
    )
    yield handle
    assert handle.stop() == 0, handle.log_tail()


# --- scraping ------------------------------------------------------------------------------------


def test_prometheus_scrapes_every_endpoint_with_all_targets_up(
    stack: Settings, watched: ReplicatorProcess
) -> None:
    def targets() -> list[dict[str, Any]] | None:
        active = prometheus(stack, "/api/v1/targets", state="active")["activeTargets"]
        jobs = {(t["labels"]["job"], t["labels"].get("service")) for t in active}
        replicator = [
            t for t in active if t["scrapeUrl"] == f"http://127.0.0.1:{watched.metrics_port}/metrics"
        ]
        expected = {
            ("prometheus", None),
            ("scv-exporter", None),
            ("jmx", "kafka"),
            ("jmx", "connect"),
            ("jmx", "cassandra"),
        }
        if expected <= jobs and replicator and all(t["health"] == "up" for t in active):
            return active
        return None

    active = wait_for(targets, timeout_s=120, every_s=1, what="every target discovered and up")
    replicator = next(
        t
        for t in active
        if t["labels"]["job"] == "scv-replicator" and t["labels"].get("group") == watched.group_id
    )
    assert replicator["health"] == "up"


# --- replicator health and its own lag during a stall --------------------------------------------


def test_replicator_lag_gauges_keep_moving_while_the_store_is_out(
    stack: Settings, shop: SourceDatabase, tmp_path: Path
) -> None:
    proxy = FaultyProxy(stack.store.port)
    proxy.start()
    port = 9443
    worker = start_replicator(
        tmp_path,
        metrics_port=port,
        group_id=f"scv-stall-{uuid.uuid4().hex[:6]}",
        extra_env={
            "SCV_STORE__PORT": str(proxy.port),
            "SCV_STORE__REQUEST_TIMEOUT_S": "2",
            "SCV_CONSUMER__LAG_REPORT_S": "1",
            "SCV_CONSUMER__READY_MAX_LAG_S": "3",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # The orders topic exists and is assigned before the outage: a loop stuck in a store retry
        # does not poll, so it would never be assigned a topic created meanwhile.
        shop.execute(
            "INSERT INTO orders VALUES (%s, 1, 'before the outage')", (random.randint(10**9, 10**15),)
        )
        orders = f"{shop.name}.public.orders"
        wait_for(
            lambda: replicator_value(port, "scv_consumer_lag_offsets", topic=orders) is not None,
            timeout_s=90,
            what="the orders topic assigned",
        )
        wait_for(lambda: status_code(f"{base}/readyz") == 200, timeout_s=90, what="ready (caught up)")
        proxy.cut()
        with steady_inserts(shop, every_s=0.1):
            first = wait_for(
                lambda: (v := replicator_value(port, "scv_consumer_lag_seconds")) and v > 1 and v,
                timeout_s=60,
                what="lag in seconds while the store is out",
            )
            # The loop is stuck retrying its writes: the gauges still move, it is live but not ready.
            wait_for(
                lambda: (v := replicator_value(port, "scv_consumer_lag_seconds")) and v > first + 2,
                timeout_s=30,
                what="lag in seconds keeps growing",
            )
            assert (replicator_value(port, "scv_consumer_lag_offsets") or 0) > 0
            assert httpx.get(f"{base}/livez").status_code == 200
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 503
            assert "behind" in ready.text
        proxy.restore()
        wait_for(lambda: status_code(f"{base}/readyz") == 200, timeout_s=120, what="ready again")
        wait_for(
            lambda: replicator_value(port, "scv_consumer_lag_seconds") == 0, timeout_s=30, what="caught up"
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
        proxy.cut()


# --- lag from outside, and its alert -------------------------------------------------------------


def test_stopping_the_replicator_under_load_grows_external_lag_and_fires_the_lag_alert(
    stack: Settings, shop: SourceDatabase, tmp_path: Path
) -> None:
    group = f"scv-lagged-{uuid.uuid4().hex[:6]}"
    worker = start_replicator(tmp_path, metrics_port=9442, group_id=group)

    def lag_s() -> float | None:
        return exporter_value(stack, "kafka_consumergroup_group_max_lag_seconds", group=group)

    def caught_up_on_the_loaded_topic() -> bool:
        # Lag is counted on the partitions a group has committed (as kafka-lag-exporter and Burrow
        # do: an empty group's subscription is unknown). A new group starts from the earliest offset
        # of every source's topics and may first commit small ones: stopped then, it had no offset
        # on the loaded topic, and its lag stayed 0 (seen in a whole run).
        on_orders = exporter_value(
            stack, "kafka_consumergroup_group_topic_sum_lag", group=group, topic=f"{shop.name}.public.orders"
        )
        return on_orders is not None and (v := lag_s()) is not None and v < 2

    try:
        with steady_inserts(shop):
            wait_for(caught_up_on_the_loaded_topic, timeout_s=90, what="caught up under load")
            assert worker.stop() == 0, worker.log_tail()
            try:
                first = wait_for(
                    lambda: (v := lag_s()) and v > FAST.lag_seconds and v,
                    timeout_s=60,
                    what="lag past the threshold",
                )
            except pytest.fail.Exception as exc:
                # Say what the exporter had of the group and what it logged.
                pytest.fail(f"{exc}\n{_exporter_view_of(stack, group)}")
            wait_for(lambda: (v := lag_s()) and v > first + 4, timeout_s=30, what="lag keeps growing")
            alert = wait_for(
                lambda: firing(stack, "ReplicatorLagHigh", group=group),
                timeout_s=60,
                what="ReplicatorLagHigh firing",
            )
        assert alert[0]["severity"] == "critical"
    finally:
        worker.stop()


def test_a_poison_record_raises_the_dead_letter_alert(
    stack: Settings, shop: SourceDatabase, watched: ReplicatorProcess
) -> None:
    topic = f"{shop.name}.public.customers"
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers})
    producer.produce(topic, key=b"poison", value=b"\x07 not avro " + uuid.uuid4().bytes)
    producer.flush(10)
    wait_for(
        lambda: replicator_value(watched.metrics_port, "scv_events_dead_lettered_total", topic=topic),
        what="the watched replicator parked it",
    )
    alert = wait_for(
        lambda: firing(stack, "DeadLettersGrowing", topic=topic),
        timeout_s=60,
        what="DeadLettersGrowing firing",
    )
    assert alert[0]["reason"] == "undecodable"


# --- connector faults ------------------------------------------------------------------------------


def test_a_paused_connector_shows_in_status_and_in_its_metric(
    stack: Settings, capture: SourceDatabase
) -> None:
    connector = capture.spec.names.connector
    with ConnectClient(stack.connect.url) as connect:
        connect.pause(connector)
        try:
            wait_for(
                lambda: (
                    exporter_value(stack, "scv_source_connector_state", source=capture.name, state="PAUSED")
                    == 1
                ),
                timeout_s=60,
                what="PAUSED in the exporter's metric",
            )
            _code, entry = status_of(capture.name, stack.consumer.group_id)
            assert entry["connector"] == "PAUSED"
            assert entry["level"] == "WARN"
            assert entry["findings"][0]["next"] == f"scv sources resume {capture.name}"
        finally:
            connect.resume(connector)
    wait_for(
        lambda: (
            exporter_value(stack, "scv_source_connector_state", source=capture.name, state="RUNNING") == 1
        ),
        timeout_s=60,
        what="RUNNING again",
    )


def test_a_slot_held_by_a_stopped_connector_shows_growing_retained_wal(
    stack: Settings, capture: SourceDatabase
) -> None:
    connector = capture.spec.names.connector

    def retained() -> float | None:
        return exporter_value(stack, "scv_source_slot_retained_wal_bytes", source=capture.name)

    with ConnectClient(stack.connect.url) as connect:
        connect.stop(connector)
        try:
            wait_for(
                lambda: exporter_value(stack, "scv_source_slot_active", source=capture.name) == 0,
                timeout_s=60,
                what="the slot inactive",
            )
            before = wait_for(retained, what="retained WAL measured")
            capture.execute(
                "INSERT INTO orders SELECT g, 1, repeat('x', 500) FROM generate_series(%s, %s) g",
                (10**12, 10**12 + 5000),
            )
            after = wait_for(
                lambda: (v := retained()) and v >= before + 2_000_000 and v,
                timeout_s=60,
                what="retained WAL grows",
            )
            assert after > before
        finally:
            connect.resume(connector)
    wait_for(
        lambda: exporter_value(stack, "scv_source_slot_active", source=capture.name) == 1,
        timeout_s=90,
        what="the slot active again",
    )


def test_a_killed_connector_task_shows_failed_in_status_and_in_its_metrics(
    stack: Settings, capture: SourceDatabase
) -> None:
    connector = capture.spec.names.connector
    with ConnectClient(stack.connect.url) as connect:
        config = connect.get_config(connector)
        assert config is not None
        slot = capture.spec.names.slot

        def walsender() -> int | None:
            rows = capture.fetch("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            return int(rows[0][0]) if rows and rows[0][0] else None

        before = wait_for(walsender, timeout_s=60, what="the slot streaming")
        # Debezium retries a lost connection forever by default; with retries off, the walsender's
        # death is the task's (as a hard database failure would be). The new config restarts the
        # task: its own walsender, a new pid, is the one to terminate.
        connect.put_config(connector, {**config, "errors.max.retries": "0"})
        try:
            pid = wait_for(
                lambda: (p := walsender()) not in (None, before) and p,
                timeout_s=60,
                what="the reconfigured task streaming",
            )
            with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_for(
                lambda: (
                    exporter_value(
                        stack, "scv_source_task_state", source=capture.name, task="0", state="FAILED"
                    )
                    == 1
                ),
                timeout_s=60,
                what="FAILED in the exporter's metric",
            )
            jmx = f"http://127.0.0.1:{stack.stack.connect_jmx_port}/metrics"
            assert any(
                name == "kafka_connect_connector_task_status"
                and labels.get("connector") == connector
                and value == 1
                for name, labels, value in _samples(jmx)
                if labels.get("status") == "failed"
            )
            code, entry = status_of(capture.name, stack.consumer.group_id)
            assert code == 1
            assert entry["level"] == "FAIL"
            assert entry["tasks"] == {"0": "FAILED"}
            assert entry["findings"][0]["reason"].startswith("task 0 FAILED")
            screen = scv("status", "--group", stack.consumer.group_id)
            assert screen.returncode == 1
            assert "task 0 FAILED: PSQLException: " in screen.stdout, screen.stdout
            assert f"scv sources restart {capture.name}" in screen.stdout
            # The next command the screen gives brings the task back.
            restarted = scv("sources", "restart", capture.name)
            assert restarted.returncode == 0, restarted.stdout + restarted.stderr
            wait_for(
                lambda: (
                    exporter_value(
                        stack, "scv_source_task_state", source=capture.name, task="0", state="RUNNING"
                    )
                    == 1
                ),
                timeout_s=90,
                what="the task RUNNING after `scv sources restart`",
            )
        finally:
            connect.put_config(connector, config)
    wait_for(
        lambda: (s := connect_status(stack, connector)) and s.running, timeout_s=90, what="task running again"
    )


def connect_status(stack: Settings, connector: str) -> Any:
    with ConnectClient(stack.connect.url) as connect:
        return connect.status(connector)


# --- the dashboard ---------------------------------------------------------------------------------

PANELS = sorted({title for title, _expr in panel_queries(dashboard())})


@pytest.fixture(scope="module")
def exported(stack: Settings, watched: ReplicatorProcess, capture: SourceDatabase) -> set[str]:
    """Every series name some endpoint Prometheus scrapes exports now (histograms with their suffixes)."""
    active = prometheus(stack, "/api/v1/targets", state="active")["activeTargets"]
    names = {"up"}  # Prometheus's own series for every target
    for target in active:
        if target["health"] != "up":
            continue
        text = httpx.get(target["scrapeUrl"], timeout=10).text
        for family in text_string_to_metric_families(text):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            if family.type in ("histogram", "summary"):
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            if family.type == "counter":
                names.add(f"{family.name}_total")
    return names


@pytest.mark.parametrize("title", PANELS)
def test_every_dashboard_query_names_only_series_the_running_stack_exports(
    title: str, exported: set[str]
) -> None:
    wanted = set().union(*(series_names(expr) for t, expr in panel_queries(dashboard()) if t == title))
    assert wanted - exported == set(), f"panel {title!r} queries series nothing exports"
