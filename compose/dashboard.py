"""The SRE dashboard, as data: "is the view fresh, and if not, where is it stuck?" on one page.

    python -m compose.dashboard     # rewrites DASHBOARD_FILE (provisioning/dashboards/scv-pipeline.json)
    dashboard()["panels"]           # what Grafana provisions

Rows follow a change's path backwards from the symptom: freshness (capture and delivery split),
throughput and lag, dead letters and stalls, the sources (connector, slot, heartbeat, Debezium), the
store and dependencies, JVM and GC pauses. Every query names only series this project exports (the
replicator, the pipeline exporter, the JMX agents); tests/integration/test_observability.py checks
them against the running stack, tests/unit/test_dashboard.py checks the file is this rendering.
Grafana reads the file through compose/config/grafana/provisioning/dashboards/scv.yml.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from compose.versions import COMPOSE_DIR

__all__ = ["DASHBOARD_FILE", "dashboard", "panel_queries", "render_dashboard", "series_names"]

DASHBOARD_FILE = COMPOSE_DIR / "config" / "grafana" / "provisioning" / "dashboards" / "scv-pipeline.json"
_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
_RATE = "$__rate_interval"
_SRC = 'source=~"$source"'
_GROUP = 'group=~"$group"'
_STREAMING = 'context="streaming",name=~"$source"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    # A red line where the objective or alert threshold lies.
    threshold: float | None = None
    width: int = 8


def _p99(metric: str, by: str, matcher: str = "") -> str:
    selector = f"{metric}_bucket{{{matcher}}}" if matcher else f"{metric}_bucket"
    return f"histogram_quantile(0.99, sum by ({by}, le) (rate({selector}[{_RATE}])))"


_ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "Freshness: is the view fresh?",
        (
            Panel(
                "Freshness p99 by source",
                (Query(_p99("scv_freshness_seconds", "source", _SRC), "{{source}}"),),
                "s",
                description="Source commit to applied in the view. Objective: p99 under 1 s.",
                threshold=1.0,
            ),
            Panel(
                "Capture (Debezium) vs delivery (replicator), p99",
                (
                    Query(_p99("scv_capture_seconds", "source", _SRC), "capture {{source}}"),
                    Query(_p99("scv_delivery_seconds", "source", _SRC), "delivery {{source}}"),
                ),
                "s",
                description="Split at the Kafka record's timestamp: whose share of freshness grew?",
            ),
            Panel(
                "Freshness objective: share of changes over 1 s (1 h)",
                (
                    Query(
                        f'1 - sum by (source) (rate(scv_freshness_seconds_bucket{{le="1.0",{_SRC}}}[1h]))'
                        f" / sum by (source) (rate(scv_freshness_seconds_count{{{_SRC}}}[1h]))",
                        "{{source}}",
                    ),
                ),
                "percentunit",
                description="Budget: 1%. FreshnessBudgetBurnFast pages at 14.4x (14.4% over 1 h).",
                threshold=0.01,
            ),
        ),
    ),
    (
        "Throughput and lag: where is it stuck?",
        (
            Panel(
                "Changes applied per second",
                (
                    Query(
                        f"sum by (source) (rate(scv_events_applied_total{{{_SRC}}}[{_RATE}]))", "{{source}}"
                    ),
                ),
                "ops",
            ),
            Panel(
                "Lag in seconds, from outside the replicators",
                (Query(f"kafka_consumergroup_group_max_lag_seconds{{{_GROUP}}}", "{{group}}"),),
                "s",
                description="Computed by the pipeline exporter: keeps growing when replicators are stuck.",
                threshold=60.0,
            ),
            Panel(
                "Lag in records by topic",
                (Query(f"kafka_consumergroup_group_topic_sum_lag{{{_GROUP}}}", "{{group}} {{topic}}"),),
                "short",
            ),
            Panel(
                "Replicators' own lag (seconds), worst partition",
                (Query("max by (instance) (scv_consumer_lag_seconds)", "{{instance}}"),),
                "s",
            ),
            Panel(
                "Replicators: up, live, ready; group members",
                (
                    Query('up{job="scv-replicator"}', "up {{instance}}"),
                    Query("scv_replicator_live", "live {{instance}}"),
                    Query("scv_replicator_ready", "ready {{instance}}"),
                    Query(f"scv_consumer_group_members{{{_GROUP}}}", "members {{group}}"),
                ),
                "short",
            ),
            Panel(
                "Batch phases p99",
                (Query(_p99("scv_batch_phase_seconds", "phase"), "{{phase}}"),),
                "s",
            ),
        ),
    ),
    (
        "Dead letters and stalls",
        (
            Panel(
                "Dead letters by topic and reason",
                (
                    Query(
                        f"sum by (topic, reason) (increase(scv_events_dead_lettered_total[{_RATE}]))",
                        "{{topic}} {{reason}}",
                    ),
                ),
                "short",
                description="Parked with their original bytes: not in the view until replayed.",
            ),
            Panel(
                "Retried outages by kind",
                (Query(f"sum by (kind) (increase(scv_errors_total[{_RATE}]))", "{{kind}}"),),
                "short",
            ),
            Panel(
                "Offset gaps, stopped partitions, sources paused by poison",
                (
                    Query(f"sum by (topic) (increase(scv_offset_gaps_total[{_RATE}]))", "gap {{topic}}"),
                    Query(
                        "max by (topic, partition) (scv_partition_stopped)",
                        "stopped {{topic}}[{{partition}}]",
                    ),
                    Query("max by (source, reason) (scv_source_paused)", "paused {{source}} ({{reason}})"),
                ),
                "short",
            ),
            Panel(
                "Worker restarts and store rejections",
                (
                    Query(
                        f"sum by (worker) (increase(scv_worker_restarts_total[{_RATE}]))",
                        "restart {{worker}}",
                    ),
                    Query(
                        f"sum by (reason) (increase(scv_store_rejections_total[{_RATE}]))",
                        "rejected {{reason}}",
                    ),
                ),
                "short",
            ),
        ),
    ),
    (
        "Sources: capture",
        (
            Panel(
                "Connector and task states",
                (
                    Query(f"scv_source_connector_state{{{_SRC}}} == 1", "{{source}} {{state}}", instant=True),
                    Query(
                        f"scv_source_task_state{{{_SRC}}} == 1",
                        "{{source}} task {{task}} {{state}}",
                        instant=True,
                    ),
                ),
                kind="table",
                description="FAILED pages (ConnectorFailed, ConnectorTaskFailed); PAUSED keeps WAL.",
            ),
            Panel(
                "Slot WAL retained",
                (Query(f"scv_source_slot_retained_wal_bytes{{{_SRC}}}", "{{source}}"),),
                "bytes",
                description="WAL the source database cannot recycle: the classic Debezium disk-full outage.",
            ),
            Panel(
                "Slot active and confirmed position age",
                (
                    Query(f"scv_source_slot_active{{{_SRC}}}", "active {{source}}"),
                    Query(
                        f"scv_source_slot_confirmed_flush_age_seconds{{{_SRC}}}", "confirmed age {{source}}"
                    ),
                ),
                "short",
            ),
            Panel(
                "Heartbeat age",
                (Query(f"scv_source_heartbeat_age_seconds{{{_SRC}}}", "{{source}}"),),
                "s",
                threshold=120.0,
            ),
            Panel(
                "Debezium streaming: behind source, since last event",
                (
                    Query(
                        f"debezium_metrics_MilliSecondsBehindSource{{{_STREAMING}}} / 1000",
                        "behind {{name}}",
                    ),
                    Query(
                        f"debezium_metrics_MilliSecondsSinceLastEvent{{{_STREAMING}}} / 1000",
                        "since last event {{name}}",
                    ),
                ),
                "s",
            ),
            Panel(
                "Debezium queue remaining capacity and connection",
                (
                    Query(
                        'debezium_metrics_QueueRemainingCapacity{context="streaming",name=~"$source"}',
                        "queue free {{name}}",
                    ),
                    Query(
                        'debezium_metrics_Connected{context="streaming",name=~"$source"}',
                        "connected {{name}}",
                    ),
                ),
                "short",
                description="A queue near 0 means Kafka Connect cannot hand records to Kafka fast enough.",
            ),
        ),
    ),
    (
        "Store and dependencies",
        (
            Panel(
                "Store write latency p99 (per batch)",
                (Query(_p99("scv_store_write_seconds", "instance"), "{{instance}}"),),
                "s",
            ),
            Panel(
                "Dependencies: reachable and probe latency",
                (
                    Query("scv_dependency_up", "up {{dependency}}"),
                    Query("scv_dependency_probe_seconds", "latency {{dependency}}"),
                ),
                "short",
            ),
            Panel(
                "Cassandra coordinator latency p99",
                (Query('cassandra_clientrequest_latency_seconds{quantile="0.99"}', "{{scope}}"),),
                "s",
            ),
            Panel(
                "Kafka Connect task throughput",
                (
                    Query(
                        "sum by (connector) (kafka_connect_source_task_metrics_source_record_write_rate)",
                        "{{connector}}",
                    ),
                ),
                "ops",
            ),
        ),
    ),
    (
        "JVM and GC pauses",
        (
            Panel(
                "GC pause time per second, by JVM",
                (Query(f"sum by (service) (rate(jvm_gc_collection_seconds_sum[{_RATE}]))", "{{service}}"),),
                "s",
            ),
            Panel(
                "Heap used, by JVM",
                (Query('sum by (service) (jvm_memory_used_bytes{area="heap"})', "{{service}}"),),
                "bytes",
            ),
            Panel(
                "Replicator GC pauses p99 (CPython)",
                (Query(_p99("scv_gc_pause_seconds", "generation"), "gen {{generation}}"),),
                "s",
            ),
        ),
    ),
)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": _DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": q.expr,
            "legendFormat": q.legend,
            "instant": q.instant,
            "range": not q.instant,
            **({"format": "table"} if panel.kind == "table" else {}),
        }
        for i, q in enumerate(panel.queries)
    ]
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if panel.kind == "timeseries" and panel.threshold is not None:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if panel.kind == "timeseries"
        else {},
        "targets": targets,
    }


def _variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
    }


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for title, row in _ROWS:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        panel_id, y, x = panel_id + 1, y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id, x = panel_id + 1, x + panel.width
        y += 8
    return {
        "uid": "scv-pipeline",
        "title": "SCV pipeline: is the view fresh, and where is it stuck?",
        "tags": ["scv", "cdc"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                _variable("source", "label_values(scv_source_connector_state, source)", "source"),
                _variable(
                    "group",
                    "label_values(kafka_consumergroup_group_max_lag_seconds, group)",
                    "consumer group",
                ),
            ]
        },
        "panels": panels,
    }


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of ``board``."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


_NOT_SERIES = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or keywords).

    A lexical reading, enough for the dashboard's own queries: strings, label matchers, ranges and
    grouping clauses are dropped, then every identifier not followed by "(" is a series name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in _NOT_SERIES:
            continue
        names.add(match.group(0))
    return names


def render_dashboard() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> None:
    DASHBOARD_FILE.parent.mkdir(parents=True, exist_ok=True)
    DASHBOARD_FILE.write_text(render_dashboard(), encoding="utf-8")
    sys.stderr.write(f"wrote {DASHBOARD_FILE}\n")


if __name__ == "__main__":
    main()
