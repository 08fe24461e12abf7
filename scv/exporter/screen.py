"""The `scv status` screen: one row per source, then what is wrong and what to run first.

console.print(render(report))
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from scv.exporter.gather import StatusReport
from scv.exporter.status import Finding, Level, SourceVerdict

__all__ = ["render"]

_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def _level(level: Level) -> Text:
    return Text(level.name, style=_STYLE[level])


def _bytes(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value == 0:
        return "0s"
    if value < 10:
        return f"{value:.2f}s" if value < 1 else f"{value:.1f}s"
    if value < 120:
        return f"{value:.0f}s"
    return f"{value / 60:.0f}m" if value < 7200 else f"{value / 3600:.1f}h"


def _connector(v: SourceVerdict) -> str:
    # The connector's state and how many of its tasks run; which task failed is in the findings.
    tasks = v.facts.tasks
    running = sum(1 for t in tasks if t.state == "RUNNING")
    return f"{v.facts.connector_state} {running}/{len(tasks)}"


def _slot(v: SourceVerdict) -> str:
    slot = v.facts.slot
    if v.facts.database_up is False:
        return "unreachable"
    if slot is None:
        return "?"
    if not slot.exists:
        return "MISSING"
    return f"{'active' if slot.active else 'inactive'} {_bytes(slot.retained_wal_bytes)}"


def _table(report: StatusReport) -> Table:
    taken = datetime.fromtimestamp(report.taken_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    table = Table(title=f"scv status  {taken}  group {report.group}", title_justify="left", expand=False)
    for column in (
        "source",
        "status",
        "connector",
        "slot (WAL held)",
        "heartbeat",
        "lag rec / s",
        "fresh p99",
        "dead 15m",
    ):
        table.add_column(column, no_wrap=True, min_width=len(column))
    # "?": Prometheus could not be asked; "-": it answered, and no change was streamed in the window.
    asked = report.replicator.freshness_p99_s is not None
    for v in report.sources:
        # "-": the group has committed nothing on this source's topics (it does not consume them).
        lag = f"{v.lag_records} / {_seconds(v.lag_seconds)}" if v.lag else "-"
        dead = "?" if v.dead_letters is None else f"{v.dead_letters:.0f}"
        fresh = _seconds(v.freshness_p99_s) if v.freshness_p99_s is not None or not asked else "-"
        table.add_row(
            v.source,
            _level(v.level),
            _connector(v),
            _slot(v),
            _seconds(v.facts.heartbeat_age_s),
            lag,
            fresh,
            dead,
        )
    members = report.replicator.members
    endpoints = ", ".join(report.replicator.endpoints) or "none found"
    table.caption = f"replicators in group: {members} ({endpoints})"
    table.caption_justify = "left"
    return table


def _finding(prefix: str, f: Finding) -> Text:
    line = Text(f"  {prefix:<12}", style="bold")
    line.append(f.level.name, style=_STYLE[f.level])
    line.append(f"  {f.reason}\n")
    line.append(f"  {'':<12}      next: ", style="dim")
    line.append(f.next_command, style="cyan")
    return line


def render(report: StatusReport) -> RenderableType:
    parts: list[RenderableType] = [_table(report)]
    problems = [("platform", f) for f in report.platform]
    problems += [(v.source, f) for v in report.sources for f in v.findings]
    if not report.sources:
        parts.append(Text("  no source onboarded: `scv sources add FILE`", style="yellow"))
    if problems:
        parts.append(Text(""))
        parts += [_finding(source, f) for source, f in problems]
    overall = Text("\n  overall: ")
    overall.append(report.level.name, style=_STYLE[report.level])
    parts.append(overall)
    return Group(*parts)
