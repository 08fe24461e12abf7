"""OK, WARN or FAIL for each source, with the reason and the next command: the rules of `scv status`.

    verdict = judge_source(facts, lag, replicator, thresholds=PRODUCTION)
    verdict.level, [f.reason for f in verdict.findings]

Pure functions of what the exporter's readers found (scv/exporter/facts.py) and of the alert
thresholds (compose/alerts.py, production values): a source is FAIL exactly when a critical alert
about it would fire once its ``for:`` elapses, WARN for a warning or an early sign, OK otherwise.
Each finding names the first command to run; the most severe comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from compose.alerts import AlertThresholds
from scv.exporter.facts import PartitionLag, Probe, SourceFacts

__all__ = [
    "Finding",
    "Level",
    "ReplicatorView",
    "SourceVerdict",
    "judge_platform",
    "judge_source",
]

# The native stack's service behind each dependency (`scv stack logs SERVICE`).
_STACK_SERVICE = {"store": "cassandra", "registry": "registry", "connect": "connect", "kafka": "kafka"}
# Seconds behind from which a source is worth a look, well before the lag alert's threshold.
LAG_WARN_S = 10.0


class Level(IntEnum):
    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True)
class Finding:
    level: Level
    reason: str
    next_command: str


@dataclass(frozen=True)
class ReplicatorView:
    """What is known about the replicators of the consumer group `scv status` looks at."""

    group: str
    members: int
    # host:port of each replicator's metrics endpoint (from the group's members).
    endpoints: tuple[str, ...] = ()
    # From Prometheus, per source; None when Prometheus could not be asked.
    freshness_p99_s: dict[str, float] | None = None
    dead_letters: dict[str, float] | None = None
    dead_letter_window: str = "15m"


@dataclass(frozen=True)
class SourceVerdict:
    source: str
    facts: SourceFacts
    lag: tuple[PartitionLag, ...]
    freshness_p99_s: float | None
    dead_letters: float | None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def level(self) -> Level:
        return max((f.level for f in self.findings), default=Level.OK)

    @property
    def lag_records(self) -> int:
        return sum(p.lag for p in self.lag)

    @property
    def lag_seconds(self) -> float | None:
        known = [p.lag_seconds for p in self.lag if p.lag_seconds is not None]
        return max(known) if known else None


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f} GiB"


def _connector_findings(f: SourceFacts) -> list[Finding]:
    status_cmd = f"scv sources status {f.source}"
    restart = f"fix the cause, then scv sources restart {f.source}"
    out: list[Finding] = []
    if f.connector_state == "FAILED":
        out.append(
            Finding(
                Level.FAIL, f"connector FAILED: {f.connector_error or 'no trace'}", f"{status_cmd}; {restart}"
            )
        )
    elif f.connector_state == "MISSING":
        out.append(Finding(Level.FAIL, "connector has no status in Kafka Connect", "scv stack logs connect"))
    elif f.connector_state in ("PAUSED", "STOPPED"):
        out.append(
            Finding(
                Level.WARN,
                f"connector {f.connector_state}: nothing is captured, the slot keeps WAL meanwhile",
                f"scv sources resume {f.source}",
            )
        )
    elif f.connector_state in ("UNASSIGNED", "RESTARTING"):
        out.append(Finding(Level.WARN, f"connector {f.connector_state}", "scv stack logs connect"))
    for task in f.tasks:
        if task.state == "FAILED":
            out.append(
                Finding(
                    Level.FAIL,
                    f"task {task.id} FAILED: {task.error or 'no trace'}",
                    f"{status_cmd}; {restart}",
                )
            )
        elif task.state in ("UNASSIGNED", "RESTARTING"):
            out.append(Finding(Level.WARN, f"task {task.id} {task.state}", "scv stack logs connect"))
    if f.connector_state == "RUNNING" and not f.tasks:
        out.append(Finding(Level.WARN, "connector RUNNING without a task", "scv stack logs connect"))
    return out


def _slot_findings(f: SourceFacts, t: AlertThresholds) -> list[Finding]:
    status_cmd = f"scv sources status {f.source}"
    if f.database_up is False:
        return [
            Finding(
                Level.WARN,
                f"source database unreachable as the CDC user: {f.database_error}",
                f"{status_cmd} (then check the database and the password secret)",
            )
        ]
    slot = f.slot
    if slot is None:
        return []
    if not slot.exists:
        return [
            Finding(
                Level.FAIL,
                f"replication slot {slot.name} is missing: changes made meanwhile never reach the view",
                f"{status_cmd}; re-add the source (`scv sources add FILE`), "
                f"then `scv sources resnapshot {f.source}`",
            )
        ]
    out: list[Finding] = []
    if slot.wal_status == "lost":
        out.append(
            Finding(
                Level.FAIL,
                f"slot {slot.name} lost WAL it needed (wal_status=lost)",
                f"scv sources resnapshot {f.source}",
            )
        )
    retained = slot.retained_wal_bytes
    if retained is not None and retained > t.slot_retained_wal_critical_bytes:
        out.append(
            Finding(
                Level.FAIL, f"slot retains {_gib(retained)} of WAL: the source's disk is at risk", status_cmd
            )
        )
    elif retained is not None and retained > t.slot_retained_wal_bytes:
        out.append(Finding(Level.WARN, f"slot retains {_gib(retained)} of WAL", status_cmd))
    running = f.connector_state == "RUNNING" and all(task.state == "RUNNING" for task in f.tasks)
    if running and not slot.active:
        out.append(
            Finding(
                Level.WARN, "slot inactive although the connector reports RUNNING", "scv stack logs connect"
            )
        )
    return out


def _lag_findings(
    source: str, lag: tuple[PartitionLag, ...], replicator: ReplicatorView, t: AlertThresholds
) -> list[Finding]:
    behind = sum(p.lag for p in lag)
    if not behind:
        return []
    seconds = max((p.lag_seconds or 0.0 for p in lag), default=0.0)
    if replicator.members == 0:
        return [
            Finding(
                Level.FAIL,
                f"{behind} records waiting ({seconds:.0f}s) and no replicator in group {replicator.group}",
                f"SCV_CONSUMER__GROUP_ID={replicator.group} scv consume",
            )
        ]
    probe = (
        f"curl -s http://{replicator.endpoints[0]}/livez" if replicator.endpoints else "the replicator's log"
    )
    if seconds > t.lag_seconds:
        return [Finding(Level.FAIL, f"{seconds:.0f}s behind ({behind} records)", probe)]
    if seconds > LAG_WARN_S:
        return [Finding(Level.WARN, f"{seconds:.0f}s behind ({behind} records)", probe)]
    return []


def judge_source(
    facts: SourceFacts,
    lag: tuple[PartitionLag, ...],
    replicator: ReplicatorView,
    thresholds: AlertThresholds,
) -> SourceVerdict:
    findings = [*_connector_findings(facts), *_slot_findings(facts, thresholds)]
    findings += _lag_findings(facts.source, lag, replicator, thresholds)
    # A heartbeat is only news while capture should be running: a paused or failed one explains it.
    capturing = facts.connector_state == "RUNNING" and all(t.state == "RUNNING" for t in facts.tasks)
    if (
        capturing
        and facts.heartbeat_age_s is not None
        and facts.heartbeat_age_s > thresholds.heartbeat_stale_seconds
    ):
        findings.append(
            Finding(
                Level.WARN,
                f"no Debezium heartbeat for {facts.heartbeat_age_s:.0f}s",
                f"scv sources status {facts.source}; scv stack logs connect",
            )
        )
    freshness = None if replicator.freshness_p99_s is None else replicator.freshness_p99_s.get(facts.source)
    if freshness is not None and freshness > 1.0:
        findings.append(
            Finding(
                Level.WARN,
                f"freshness p99 {freshness:.2f}s over 5 min (objective 1s)",
                "the dashboard's capture/delivery split (Debezium's share or the replicator's)",
            )
        )
    dead = None if replicator.dead_letters is None else replicator.dead_letters.get(facts.source, 0.0)
    if dead:
        findings.append(
            Finding(
                Level.WARN,
                f"{dead:.0f} records dead-lettered in {replicator.dead_letter_window}: not in the view",
                "the replicator's `record_dead_lettered` log lines (topic, offset, reason)",
            )
        )
    findings.sort(key=lambda f: -f.level)
    return SourceVerdict(facts.source, facts, lag, freshness, dead, tuple(findings))


def judge_platform(probes: list[Probe], prometheus_error: str | None) -> list[Finding]:
    """What concerns every source: unreachable dependencies, and Prometheus for the figures it gives."""
    out = [
        Finding(
            Level.FAIL,
            f"{p.dependency} unreachable: {p.error}",
            f"scv stack status; scv stack logs {_STACK_SERVICE.get(p.dependency, p.dependency)}",
        )
        for p in probes
        if not p.up
    ]
    if prometheus_error is not None:
        out.append(
            Finding(
                Level.WARN,
                f"Prometheus not reachable ({prometheus_error}): freshness and dead letters unknown",
                "scv stack status",
            )
        )
    return out
