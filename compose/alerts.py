"""The alert rules SREs get, as data: one definition, rendered for production or for the test stack.

    render_rules(PRODUCTION)      # the text of compose/config/prometheus-rules/scv-alerts.yml
    render_rules(FAST)            # what the native stack loads by default (stack.alert_rules)
    python -m compose.alerts      # rewrites the shipped file after a change here

The shipped file is what `promtool test rules` checks (tests/unit/test_alert_rules.py) and what the
compose Prometheus mounts; a unit test fails when it differs from ``render_rules(PRODUCTION)``. The
native stack renders the same rules with ``FAST`` thresholds (seconds instead of minutes, lag of 5 s
instead of 60 s) so that its integration tests can watch an alert fire in the real Prometheus; only
numbers differ between the two, never an expression's shape.

Every alert carries a ``runbook`` annotation: what it means, and the first command to run.
Counters that are created on their first increment (dead letters, offset gaps, rejections) are
matched with ``grew_within``: ``increase()`` alone misses a series whose first sample is already 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import yaml

from compose.versions import COMPOSE_DIR

__all__ = [
    "FAST",
    "PRODUCTION",
    "PROFILES",
    "RULES_FILE",
    "AlertThresholds",
    "alert_rules",
    "grew_within",
    "render_rules",
]

RULES_FILE = COMPOSE_DIR / "config" / "prometheus-rules" / "scv-alerts.yml"

GIB = 1024**3


@dataclass(frozen=True)
class AlertThresholds:
    """The numbers of the rules (production values by default; ``FAST`` for the test stack)."""

    # How often each rule group is evaluated.
    interval: str = "30s"
    # Lag in seconds behind the newest record of a partition (measured from outside the replicator).
    lag_seconds: float = 60.0
    lag_for: str = "5m"
    # A replicator that does not answer, or is not live, for this long.
    replicator_down_for: str = "2m"
    # Freshness objective: this share of streamed changes applied within 1 s (scv_freshness_seconds).
    freshness_objective: float = 0.99
    # Dead letters, offset gaps and store rejections: any growth within this window.
    growth_window: str = "15m"
    dead_letter_for: str = "0m"
    connector_failed_for: str = "1m"
    # A paused connector keeps its slot's WAL; fine for a maintenance window, not for hours.
    connector_paused_for: str = "30m"
    slot_retained_wal_bytes: int = 2 * GIB
    slot_retained_wal_critical_bytes: int = 16 * GIB
    slot_for: str = "5m"
    # Debezium's heartbeat is every 10 s by default (connectors/spec.py): several missed in a row.
    heartbeat_stale_seconds: float = 120.0
    heartbeat_for: str = "2m"
    dependency_for: str = "2m"


PRODUCTION = AlertThresholds()
FAST = AlertThresholds(
    interval="2s",
    lag_seconds=5.0,
    lag_for="4s",
    replicator_down_for="10s",
    growth_window="15m",
    dead_letter_for="0s",
    connector_failed_for="0s",
    connector_paused_for="10s",
    slot_retained_wal_bytes=64 * 1024**2,
    slot_retained_wal_critical_bytes=GIB,
    slot_for="10s",
    heartbeat_stale_seconds=30.0,
    heartbeat_for="10s",
    dependency_for="10s",
)
PROFILES: dict[str, AlertThresholds] = {"production": PRODUCTION, "fast": FAST}

# Multi-window, multi-burn-rate alerting on the freshness objective (Google SRE workbook, ch. 5):
# page when 2% of a 30-day budget burns in an hour, open a ticket when 5% burns in six hours.
_BURN_WINDOWS = ("5m", "30m", "1h", "6h")
_PAGE_BURN = 14.4
_TICKET_BURN = 6.0


def grew_within(metric: str, window: str, by: str) -> str:
    """Growth of a counter within ``window``, summed ``by`` labels, counting series created inside it.

    ``increase()`` needs two samples, so a counter child created by its first increment (value 1
    from its first scrape) shows no increase at all; ``x unless x offset W`` catches exactly those.
    """
    return f"sum by ({by}) (({metric} unless {metric} offset {window}) or increase({metric}[{window}]))"


def _number(value: float) -> str:
    return f"{value:g}"


def _alert(name: str, expr: str, duration: str, severity: str, summary: str, runbook: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "runbook": runbook},
    }


def _freshness_recordings() -> list[dict[str, Any]]:
    # prometheus_client writes bucket bounds as floats: the 1 s bucket is le="1.0".
    return [
        {
            "record": f"scv:freshness_slo_errors:ratio_rate{window}",
            "expr": (
                f'1 - sum by (source) (rate(scv_freshness_seconds_bucket{{le="1.0"}}[{window}]))'
                f" / sum by (source) (rate(scv_freshness_seconds_count[{window}]))"
            ),
        }
        for window in _BURN_WINDOWS
    ]


def _replicator_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    budget = _number(1 - t.freshness_objective)
    burn = "scv:freshness_slo_errors:ratio_rate"
    return [
        _alert(
            "ReplicatorDown",
            'up{job="scv-replicator"} == 0',
            t.replicator_down_for,
            "critical",
            "Replicator {{ $labels.instance }} does not answer /metrics.",
            "The process crashed, hung or lost its network; nothing it owns is applied meanwhile. "
            "First: `scv status`, then the replicator's log; `kill -USR1 PID` prints where it waits.",
        ),
        _alert(
            "ReplicatorNotLive",
            "scv_replicator_live == 0",
            t.replicator_down_for,
            "critical",
            "Replicator {{ $labels.instance }} made no progress for longer than its liveness bound.",
            "Its loop is stuck inside a batch (a hung write or decode), not in a retried outage. "
            "First: `kill -USR1 PID` to print its threads' stacks into its log, then restart it.",
        ),
        _alert(
            "NoReplicatorConsuming",
            "max by (cluster_name, group) (scv_consumer_group_members) == 0 and on (cluster_name, group)"
            " max by (cluster_name, group) (kafka_consumergroup_group_max_lag) > 0",
            t.lag_for,
            "critical",
            "Consumer group {{ $labels.group }} has records waiting and no member.",
            "No replicator of this group is running: the view is frozen. "
            "First: `scv status`; start one with `scv consume` (or check why its pods are not running).",
        ),
        _alert(
            "ReplicatorLagHigh",
            "max by (cluster_name, group) (kafka_consumergroup_group_max_lag_seconds)"
            f" > {_number(t.lag_seconds)}",
            t.lag_for,
            "critical",
            "Group {{ $labels.group }} is {{ $value | humanizeDuration }} behind its newest record.",
            "The view is stale by that much (lag measured by the exporter, so it keeps growing when "
            "replicators are stuck or dead). First: `scv status` shows which source and partition; "
            "then ReplicatorDown/NotLive, or a store outage (`scv_errors_total`), explain why.",
        ),
        _alert(
            "FreshnessBudgetBurnFast",
            f"{burn}1h > ({_number(_PAGE_BURN)} * {budget})"
            f" and {burn}5m > ({_number(_PAGE_BURN)} * {budget})",
            "2m",
            "critical",
            "Source {{ $labels.source }} burns its freshness budget 14x too fast (p99 > 1 s objective).",
            "More than 14% of the last hour's changes took over 1 s to reach the view. "
            "First: the dashboard's capture/delivery split says whether Debezium (capture) or the "
            "replicator (delivery) is slow; `scv status` for lag and connector state.",
        ),
        _alert(
            "FreshnessBudgetBurnSlow",
            f"{burn}6h > ({_number(_TICKET_BURN)} * {budget})"
            f" and {burn}30m > ({_number(_TICKET_BURN)} * {budget})",
            "15m",
            "warning",
            "Source {{ $labels.source }} burns its freshness budget 6x too fast over 6 hours.",
            "A sustained slowdown: 6% of changes over 1 s. First: the dashboard's capture/delivery "
            "split and store write latency; consider more replicator processes (`scv consume -p N`).",
        ),
        _alert(
            "DeadLettersGrowing",
            f"{grew_within('scv_events_dead_lettered_total', t.growth_window, 'topic, reason')} > 0",
            t.dead_letter_for,
            "warning",
            "Records of {{ $labels.topic }} are being parked in the dead-letter topic"
            " ({{ $labels.reason }}).",
            "These changes are NOT in the view until replayed; the original bytes are kept. First: "
            "the replicator's `record_dead_lettered` log lines name topic, offset and reason; fix the "
            "mapping or schema, then replay the parked records.",
        ),
        _alert(
            "OffsetGapDetected",
            f"{grew_within('scv_offset_gaps_total', t.growth_window, 'topic')} > 0",
            "0m",
            "warning",
            "Offsets were skipped in {{ $labels.topic }}: records may be missing from the view.",
            "Records expired (retention) or were deleted before the replicator read them. First: "
            "`scv status`; re-read the affected source with `scv sources resnapshot NAME`.",
        ),
        _alert(
            "PartitionStopped",
            "max by (topic, partition, reason) (scv_partition_stopped) > 0",
            "0m",
            "critical",
            "Replicator stopped consuming {{ $labels.topic }}[{{ $labels.partition }}]"
            " ({{ $labels.reason }}).",
            "The partition is held so no change is applied out of order or lost. First: the "
            "replicator's log for the partition; after repair (`scv sources resnapshot NAME`), "
            "restart the replicator.",
        ),
        _alert(
            "SourcePaused",
            "max by (source, reason) (scv_source_paused) > 0",
            "0m",
            "critical",
            "The replicator paused source {{ $labels.source }} ({{ $labels.reason }}).",
            "A storm of poison records: the source is paused instead of parking all of it. First: "
            "the replicator's `record_dead_lettered` lines for the reason; fix it, then resume.",
        ),
        _alert(
            "ReplicatorWorkerRestarting",
            "sum by (worker) (increase(scv_worker_restarts_total[15m])) > 2",
            "0m",
            "warning",
            "Replicator worker {{ $labels.worker }} restarted more than twice in 15 minutes.",
            "A crash loop in the making. First: the replicator's log for the worker's last error.",
        ),
        _alert(
            "StoreRejectingWrites",
            f"{grew_within('scv_store_rejections_total', t.growth_window, 'reason')} > 0",
            "0m",
            "warning",
            "The store rejected writes ({{ $labels.reason }}).",
            "Writes the store refuses (too large, invalid) are not retried forever. First: the "
            "replicator's log for the rejected rows; `scv store migrate` if the schema is behind.",
        ),
    ]


def _source_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    return [
        _alert(
            "ConnectorFailed",
            'max by (source) (scv_source_connector_state{state="FAILED"}) == 1',
            t.connector_failed_for,
            "critical",
            "Debezium connector of source {{ $labels.source }} is FAILED.",
            "Nothing is captured from this source and its slot keeps WAL. First: "
            "`scv sources status NAME` shows the trace; fix the cause, then `scv sources restart NAME`.",
        ),
        _alert(
            "ConnectorTaskFailed",
            'max by (source, task) (scv_source_task_state{state="FAILED"}) == 1',
            t.connector_failed_for,
            "critical",
            "Task {{ $labels.task }} of source {{ $labels.source }} is FAILED.",
            "Capture from this source stopped; its slot keeps WAL. First: `scv sources status NAME` "
            "shows the task's trace; fix the cause, then `scv sources restart NAME`.",
        ),
        _alert(
            "ConnectorPaused",
            'max by (source) (scv_source_connector_state{state="PAUSED"}) == 1',
            t.connector_paused_for,
            "warning",
            "Source {{ $labels.source }} has been paused for a while.",
            "Nothing is captured and the slot keeps WAL while paused. First: "
            "`scv sources resume NAME` once the maintenance is over.",
        ),
        _alert(
            "SlotRetainedWalHigh",
            f"max by (source) (scv_source_slot_retained_wal_bytes) > {t.slot_retained_wal_bytes}",
            t.slot_for,
            "warning",
            "Slot of source {{ $labels.source }} retains {{ $value | humanize1024 }}B of WAL.",
            "The source database cannot recycle this WAL: its disk fills if it keeps growing. "
            "First: `scv status` (is the connector running and the slot active?).",
        ),
        _alert(
            "SlotRetainedWalCritical",
            f"max by (source) (scv_source_slot_retained_wal_bytes) > {t.slot_retained_wal_critical_bytes}",
            t.slot_for,
            "critical",
            "Slot of source {{ $labels.source }} retains {{ $value | humanize1024 }}B of WAL.",
            "The source database's disk is at risk. First: `scv status`; if the connector cannot be "
            "repaired soon, `scv sources remove NAME` drops the slot (then re-add and resnapshot).",
        ),
        _alert(
            "SlotInactive",
            "max by (source) (scv_source_slot_active) == 0",
            t.slot_for,
            "warning",
            "Replication slot of source {{ $labels.source }} has no consumer.",
            "Debezium is not streaming from it (paused, failed, or the slot is missing) and WAL "
            "accumulates. First: `scv status`.",
        ),
        _alert(
            "HeartbeatStale",
            f"max by (source) (scv_source_heartbeat_age_seconds) > {_number(t.heartbeat_stale_seconds)}",
            t.heartbeat_for,
            "warning",
            "No Debezium heartbeat from source {{ $labels.source }} for {{ $value | humanizeDuration }}.",
            "Capture from this source is stalled even if the connector reports RUNNING. First: "
            "`scv sources status NAME`, then the Connect log (`scv stack logs connect`).",
        ),
        _alert(
            "SourceDatabaseUnreachable",
            "max by (source) (scv_source_database_up) == 0",
            t.dependency_for,
            "warning",
            "The exporter cannot reach the database of source {{ $labels.source }} as its CDC user.",
            "Slot metrics are blind and the connector is probably failing too. First: "
            "`scv sources status NAME`; check the database and the CDC user's password secret.",
        ),
    ]


def _platform_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    return [
        _alert(
            "ExporterDown",
            'up{job="scv-exporter"} == 0',
            t.dependency_for,
            "critical",
            "The pipeline exporter does not answer: lag, slot and connector alerts are blind.",
            "First: `scv stack status` (natively) or the exporter's log; restart `scv exporter`.",
        ),
        _alert(
            "DependencyUnreachable",
            'max by (dependency) (scv_dependency_up{dependency=~"store|registry|connect|kafka"}) == 0',
            t.dependency_for,
            "critical",
            "The {{ $labels.dependency }} does not answer the exporter's probe.",
            "Store or registry: replicators retry (nothing is lost) but apply nothing meanwhile. "
            "Connect: nothing is captured. Kafka: nothing moves. "
            "First: `scv stack status`, then the service's log (`scv stack logs SERVICE`).",
        ),
        _alert(
            "JmxTargetDown",
            'up{job="jmx"} == 0',
            t.dependency_for,
            "warning",
            "JMX metrics of {{ $labels.service }} are not scraped.",
            "The JVM is down or started without the agent. First: `scv stack status`.",
        ),
    ]


def alert_rules(t: AlertThresholds) -> dict[str, Any]:
    """The Prometheus rule file, as data."""
    return {
        "groups": [
            {"name": "scv-freshness-slo", "interval": t.interval, "rules": _freshness_recordings()},
            {"name": "scv-replicator", "interval": t.interval, "rules": _replicator_rules(t)},
            {"name": "scv-sources", "interval": t.interval, "rules": _source_rules(t)},
            {"name": "scv-platform", "interval": t.interval, "rules": _platform_rules(t)},
        ]
    }


_HEADER = """\
# GENERATED by `python -m compose.alerts` from compose/alerts.py (production thresholds): edit there.
# Tested by `promtool test rules` in tests/unit/test_alert_rules.py; mounted by the compose Prometheus.
# The native stack loads the same rules rendered with its own thresholds (settings stack.alert_rules).
"""


def render_rules(t: AlertThresholds) -> str:
    body = yaml.safe_dump(alert_rules(t), sort_keys=False, width=120, allow_unicode=True)
    return _HEADER + body


def main() -> None:
    RULES_FILE.parent.mkdir(parents=True, exist_ok=True)
    RULES_FILE.write_text(render_rules(PRODUCTION), encoding="utf-8")
    sys.stderr.write(f"wrote {RULES_FILE}\n")


if __name__ == "__main__":
    main()
