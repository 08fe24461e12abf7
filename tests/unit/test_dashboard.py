"""The provisioned Grafana dashboard (compose/dashboard.py): generated file, valid PromQL, the panels
the issue asks for. Its series are checked against the running stack in test_observability.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from compose.dashboard import DASHBOARD_FILE, dashboard, panel_queries, render_dashboard, series_names

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def test_shipped_dashboard_is_the_rendering() -> None:
    assert DASHBOARD_FILE.read_text(encoding="utf-8") == render_dashboard(), (
        "the dashboard JSON is stale: run `python -m compose.dashboard`"
    )


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions in rule files: each panel query becomes a recording rule, with
    # Grafana's variables replaced by what they expand to.
    rules = [
        {
            "record": f"dashboard:q{i}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$source", ".*").replace("$group", ".*"),
        }
        for i, (_title, expr) in enumerate(panel_queries(dashboard()))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_covers_what_an_sre_asks_first() -> None:
    names = set().union(*(series_names(expr) for _title, expr in panel_queries(dashboard())))
    for needed in (
        "scv_freshness_seconds_bucket",  # per-source freshness
        "scv_capture_seconds_bucket",  # its capture/delivery split
        "scv_delivery_seconds_bucket",
        "scv_events_applied_total",  # throughput
        "kafka_consumergroup_group_max_lag_seconds",  # lag
        "scv_events_dead_lettered_total",  # dead letters
        "scv_source_slot_retained_wal_bytes",  # slot WAL
        "scv_source_connector_state",  # connector states
        "scv_store_write_seconds_bucket",  # store write latency
        "jvm_gc_collection_seconds_sum",  # JVM pauses
        "debezium_metrics_MilliSecondsBehindSource",
    ):
        assert needed in names, needed


def test_every_panel_uses_the_provisioned_datasource_and_has_a_unique_id() -> None:
    board = json.loads(DASHBOARD_FILE.read_text())
    datasource = yaml.safe_load((DASHBOARD_FILE.parents[1] / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ][0]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_series_names_skips_functions_labels_and_keywords() -> None:
    expr = (
        '1 - sum by (source) (rate(a_bucket{le="1.0",source=~"$source"}[5m]))'
        " / on (source) group_left max without (x) (b_total offset 5m) > 1e9 and c"
    )
    assert series_names(expr) == {"a_bucket", "b_total", "c"}
