"""The report's peer section as data (pure): both systems' events/s on the same backlog, their
freshness at the same change rate, the scv/peer ratio, and how each figure was measured.

    section = peer_section(result, [ScvFigures("scv consume, 1 process", 1, 4100.0, 0.21, 0.64)])
    render_report(report | {"peer": section})
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.peer.run import PeerResult

__all__ = ["ScvFigures", "not_run", "peer_section"]


@dataclass(frozen=True)
class ScvFigures:
    """`scv consume`'s figures from the same run, for the rows beside the peer's."""

    name: str
    processes: int
    rate: float  # events/s draining the backlog (median of 10 s windows)
    p50: float | None  # freshness at the freshness run's rate (seconds), None if not measured
    p99: float | None


def not_run(reason: str) -> dict[str, Any]:
    return {"ran": False, "reason": reason}


def _finite(value: float | None) -> float | None:
    # nan: nothing measured; inf: probes not seen by the end of the run (the note counts them).
    return None if value is None or not math.isfinite(value) else value


def peer_section(result: PeerResult, scv: Sequence[ScvFigures]) -> dict[str, Any]:
    drain, fresh = result.drain, result.freshness
    tasks = f"{result.tasks} task" + ("s" if result.tasks != 1 else "")
    peer_name = f"kafka-connect-scylladb, {tasks}"
    systems: dict[str, dict[str, Any]] = {
        s.name: {"rate": s.rate, "p50": _finite(s.p50), "p99": _finite(s.p99), "freshness_by": "histogram"}
        for s in scv
    }
    systems[peer_name] = {
        "rate": drain.median_rate,
        "p50": _finite(fresh.probe.p50) if fresh else None,
        "p99": _finite(fresh.probe.p99) if fresh else None,
        "freshness_by": "probes" if fresh else "not measured",
    }
    # The like-for-like pair: one process against the same number of sink tasks (one JVM either way).
    alike = next((s for s in scv if s.processes == result.tasks), scv[0] if scv else None)
    ratio = alike.rate / drain.median_rate if alike and drain.median_rate else None
    notes = [
        f"Same backlog ({drain.events:,} records of the same topics), each system alone on the machine "
        "while it drains: events/s is the median of sliding 10 s windows of committed records for both "
        "(the peer's sink consumer group read with the same admin client as the replicator's group). "
        f"The peer drained it {drain.drained_after_s:,.0f} s after its connector was registered, using "
        f"{drain.cpu_seconds:,.1f} CPU s in its Connect worker "
        f"({1000 * drain.cpu_seconds / max(1, drain.events):.3f} per 1,000 events).",
        "The peer writes one CQL row per change into a table per topic (the row after Debezium's "
        "ExtractNewRecordState, keyed by the Debezium key); `scv consume` merges each change into the "
        "customer's wide row (index lookups, merge rules, dead-letter): not the same work per event.",
    ]
    if result.dropped:
        notes.append(
            f"The peer's rows leave out {', '.join(result.dropped)}: kafka-connect-scylladb 1.1.7 cannot "
            "write list or map columns (its task dies with CodecNotFoundException [TEXT <-> "
            "java.lang.Object] on the first such row), so its sink drops them (ReplaceField); scv "
            "writes them."
        )
    if fresh:
        notes.append(
            f"Freshness at {fresh.requested_rate:,.0f} changes/s asked ({fresh.achieved_rate:,.0f} achieved "
            f"for the peer). scv: from its own histogram (every change, source commit -> applied). Peer: "
            f"{fresh.probe.seen} of {fresh.probe.sent} probe rows (an insert into crm's customer_emails "
            "every 200 ms, timed from its commit to the first read of the peer's table that returns it, "
            "reads every 50 ms): the same span sampled, late by up to a poll interval."
            + (
                f" {fresh.probe.sent - fresh.probe.seen} probe rows were not in the peer's table 120 s after "
                "the load stopped: counted as slower than any seen (n/a where a quantile falls on them)."
                if fresh.probe.seen < fresh.probe.sent
                else ""
            )
        )
    return {
        "ran": True,
        "systems": systems,
        "ratio": ratio,
        "ratio_between": f"{alike.name} / {peer_name}" if alike else "",
        "result": asdict(result),
        "note": " ".join(notes),
    }
