"""The benchmark report as markdown, from the run's JSON (what `make bench` writes under bench/results/).

    markdown = render_report(report)          # report: the dict saved as bench/results/latest.json
    Path("bench/results/2026-12-03-1400.md").write_text(markdown)

Pure: no I/O, so the rendering is unit-tested (tests/unit/test_bench_report.py). Every throughput is
printed next to the ceiling it is measured against, in the same run; a ratio above 1 means the
ceiling was measured too low, not that it was beaten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["md_table", "ms", "per_1000", "render_freshness_runs", "render_report"]

Report = Mapping[str, Any]


def ms(seconds: float | None) -> str:
    """Seconds as whole milliseconds with thousands separators ("n/a" when unknown)."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "n/a"
    return f"{seconds * 1000:,.0f}"


def per_1000(value: float, events: int) -> float:
    """``value`` per 1,000 events (0 when nothing was applied)."""
    return value * 1000 / events if events else 0.0


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.2f}" if ceiling else "n/a"


def _throughput(report: Report) -> str:
    ceilings = {c["name"]: c["rate"] for c in report["ceilings"]}
    decode = ceilings.get("bare consume+decode", 0.0)
    cql_one = next((r for n, r in ceilings.items() if n.startswith("bare CQL writes, 1 ")), 0.0)
    cql_many = next(
        (r for n, r in ceilings.items() if n.startswith("bare CQL writes, ") and r != cql_one), 0.0
    )
    lower_one = min(decode, cql_one) if decode and cql_one else max(decode, cql_one)
    lower_many = min(decode, cql_many) if decode and cql_many else max(decode, cql_many)
    rows = [[f"{name} (ceiling)", _rate(rate), ""] for name, rate in ceilings.items()]
    for run in report["replicator"]:
        ceiling, against = (
            (lower_one, "1 process: lower of decode and CQL x1")
            if run["processes"] == 1
            else (lower_many, f"{run['processes']} processes: lower of decode and CQL x{run['processes']}")
        )
        rows.append(
            [
                f"`scv consume`, {run['processes']} process(es), median of 10 s rates "
                f"({run['events']:,} events in {run['seconds']:,.0f} s)",
                _rate(run["median_rate"]),
                f"{_ratio(run['median_rate'], ceiling)} ({against})",
            ]
        )
    return md_table(("figure", "events/s", "ratio to its ceiling"), rows)


def _cost(report: Report) -> str:
    rows = []
    for run in report["replicator"]:
        usage = run.get("usage")
        if not usage:
            continue
        rows.append(
            [
                f"{run['processes']} process(es)",
                f"{per_1000(usage['cpu_seconds'], usage['events']):.3f}",
                f"{usage['peak_rss_bytes'] / 2**20:,.0f}",
                f"{usage['events']:,}",
            ]
        )
    return md_table(
        ("replicator", "CPU seconds per 1,000 events", "peak RSS, MiB (all processes)", "events"), rows
    )


def _freshness_rows(results: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        f, c, d = r["freshness"], r["capture"], r["delivery"]
        rows.append(
            [
                f"{r['processes']}",
                f"{_rate(r['achieved_rate'])} ({_rate(r['requested_rate'])} asked)",
                f"{ms(f['p50'])} / {ms(f['p90'])} / {ms(f['p99'])}",
                ms(c["p99"]),
                ms(d["p99"]),
                str(r.get("slow_seconds", "")),
                "yes" if f["p99"] < 1.0 else "**no**",
            ]
        )
    return rows


FRESHNESS_HEADER = (
    "processes",
    "changes/s",
    "freshness p50 / p90 / p99 ms",
    "capture p99 ms",
    "delivery p99 ms",
    "seconds with p99 >= 1 s",
    "p99 < 1 s",
)


def _search(report: Report) -> str:
    steps = report.get("rate_search") or []
    if not steps:
        return "Not run (`--no-rate-search`)."
    rows = [
        [
            _rate(s["requested"]),
            _rate(s["achieved"]),
            ms(s["p50"]),
            ms(s["p99"]),
            "yes" if s["passed"] else "no",
        ]
        for s in steps
    ]
    best = [s for s in steps if s["passed"]]
    verdict = (
        f"Highest rate sustained for {report['rate_search_seconds']:.0f} s with p99 under 1 s: "
        f"**{_rate(best[-1]['achieved'])} changes/s** ({report['rate_search_processes']} processes)."
        if best
        else "No step kept p99 under 1 s."
    )
    stop = report.get("rate_search_stop", "")
    return (
        md_table(("asked changes/s", "achieved", "p50 ms", "p99 ms", "p99 < 1 s"), rows)
        + f"\n\n{verdict} {stop}"
    )


def _backfill(report: Report) -> str:
    backfill = report.get("backfill")
    if not backfill:
        return "Not measured in this run."
    capture, apply = backfill["capture"], backfill["apply"]
    rows = []
    if capture:
        rows.append(
            [
                "capture (Debezium: onboarding -> last snapshot record in Kafka)",
                f"{capture['seconds']:,.0f}",
                _rate(capture["rows"] / capture["seconds"]) if capture["seconds"] else "n/a",
            ]
        )
    rows.append(
        [
            "apply (`scv consume`, 1 process: start -> every record committed)",
            f"{apply['seconds']:,.0f}",
            _rate(apply["events"] / apply["seconds"]) if apply["seconds"] else "n/a",
        ]
    )
    if capture:
        total = capture["seconds"] + apply["seconds"]
        rows.append(["end to end (capture, then apply)", f"{total:,.0f}", _rate(capture["rows"] / total)])
    note = backfill.get("note", "")
    return md_table(("phase", "seconds", "rows/s"), rows) + (f"\n\n{note}" if note else "")


def _events(results: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for r in results:
        start = r["window"][0]
        events = r.get("events") or []
        slow = [s for s in r.get("timeline", []) if not math.isnan(s["p99"]) and s["p99"] >= 1.0]
        lines = [f"- {r['processes']} process(es), {r.get('start', '')}:"]
        lines += [f"  - {e['at'] - start:+.0f} s {e['name']} ({e['detail']})" for e in events]
        if slow:
            shown = ", ".join(f"{s['at'] - start:+.0f} s: {ms(s['p99'])} ms{_doing(s)}" for s in slow[:12])
            lines.append(f"  - seconds with p99 >= 1 s (relative to the measured window): {shown}")
        else:
            lines.append("  - no second with p99 >= 1 s from the warm-up's start to the window's end")
        parts.append("\n".join(lines))
    return "\n".join(parts)


def _doing(second: Mapping[str, Any]) -> str:
    """What the loops did in a second: " (write 0.62 s, gc 0.30 s; CPU pressure 85%)"."""
    parts = [f"{part} {seconds:.2f} s" for part, seconds in list((second.get("spent") or {}).items())[:3]]
    pressure = second.get("pressure")
    if pressure is not None and not math.isnan(pressure):
        parts.append(f"CPU pressure {pressure:.0%}")
    return f" ({', '.join(parts)})" if parts else ""


def _cpu(results: Sequence[Mapping[str, Any]]) -> str:
    """Cores each component used, and how many of its threads waited for a core meanwhile."""
    names = sorted(
        {n for r in results for n in r["cpu"]}, key=lambda n: -max(r["cpu"].get(n, 0.0) for r in results)
    )
    rows = [
        [
            n,
            *(
                f"{r['cpu'].get(n, 0.0):.2f} / {r.get('cpu_wait', {}).get(n, 0.0):.2f}"
                if n != "idle" and r.get("cpu_wait")
                else f"{r['cpu'].get(n, 0.0):.2f}"
                for r in results
            ),
        ]
        for n in names
    ]
    table = md_table(("component", *(f"{r['processes']} process(es)" for r in results)), rows)
    if not any(r.get("cpu_wait") for r in results):
        return table
    pressure = [
        f"{r['processes']} process(es): {100 * r['cpu_pressure']:.0f}%"
        for r in results
        if r.get("cpu_pressure") is not None
    ]
    return "\n\n".join(
        [
            "Each cell: cores used / threads that were runnable but waited for a core (average over the "
            "window, from each thread's run-queue time). A component whose wait is close to its use ran "
            "at about half the speed it would have alone.",
            table,
            *(
                [
                    "Share of the window in which at least one task waited for a core (CPU pressure, "
                    "PSI some): " + ", ".join(pressure) + "."
                ]
                if pressure
                else []
            ),
        ]
    )


def _store_work(results: Sequence[Mapping[str, Any]]) -> str:
    """Partitions read and write requests per applied change, by table (bench/store_work.py)."""
    counted = [r for r in results if r.get("store_work")]
    if not counted:
        return "Not counted: the store keeps no per-table request counts (ScyllaDB has no system_views)."
    tables = sorted(
        {t for r in counted for t in r["store_work"]},
        key=lambda t: -max(sum(r["store_work"].get(t, {}).values()) for r in counted),
    )
    rows = []
    for table in tables:
        cells = [table]
        for r in counted:
            work = r["store_work"].get(table)
            cells.append(f"{work['reads']:.3f} / {work['writes']:.3f}" if work else "-")
        rows.append(cells)
    totals = ["**all tables**"]
    for r in counted:
        work = r["store_work"].values()
        totals.append(f"**{sum(w['reads'] for w in work):.3f} / {sum(w['writes'] for w in work):.3f}**")
    rows.append(totals)
    header = ("table", *(f"{r['processes']} process(es), {_rate(r['requested_rate'])}/s" for r in counted))
    return "\n\n".join(
        [
            "Each cell: partitions read / write requests per applied change, as the store's coordinator "
            "counted them (an `IN` read of 20 partitions counts 20; an unlogged batch counts once per table "
            "it writes). "
            "Reads are what placing a change costs the store before anything is written: index entries, "
            "parents and lookup-key owners the process cache cannot vouch for.",
            md_table(header, rows),
        ]
    )


def _reads(report: Report) -> str:
    reads = report.get("reads")
    if not reads:
        return "Not run (`--no-reads`); `make bench-reads` runs it alone."
    by = {(r["size"], r["mode"]): r for r in reads["latency"]}
    rows = []
    for size in sorted({r["size"] for r in reads["latency"]}):
        cells = [f"{size:,}"]
        for mode in ("bare driver", "sync client", "HTTP", "async client x32"):
            r = by.get((size, mode))
            cells.append(f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}" if r else "n/a")
        rows.append(cells)
    header = ("entities", "bare p50 / p99 ms", "sync client", "HTTP", "async client x32")
    source = reads.get("source", "")
    return md_table(header, rows) + f"\n\nMeasured {reads['at'][:16].replace('T', ' ')} UTC {source}".rstrip()


def _peer(report: Report) -> str:
    peer = report.get("peer")
    if not peer or not peer.get("ran"):
        reason = (peer or {}).get("reason") or "no `--peer-plugin-dir PATH`"
        return f"Not run: {reason}."
    rows = [
        [
            name,
            _rate(side["rate"]),
            f"{ms(side.get('p50'))} / {ms(side.get('p99'))}",
            side.get("freshness_by", ""),
        ]
        for name, side in peer["systems"].items()
    ]
    header = ("system", "events/s (same backlog)", "freshness p50 / p99 ms", "freshness from")
    ratio = peer.get("ratio")
    ratio_line = (
        f"\n\n**scv / peer events/s: {ratio:.2f}** ({peer.get('ratio_between', '')})." if ratio else ""
    )
    return md_table(header, rows) + ratio_line + f"\n\n{peer.get('note', '')}".rstrip()


def render_freshness_runs(runs: Sequence[Mapping[str, Any]]) -> str:
    """The repeat runs of the freshness test (`--freshness-only`), one row per run and process count;
    ``start`` says whether the processes were measured once settled or right after starting."""
    rows = []
    for run in runs:
        for result in run["freshness"]:
            rows.append(
                [run["at"][:16].replace("T", " "), run.get("start", ""), *_freshness_rows([result])[0]]
            )
    table = md_table(("run (UTC)", "start", *FRESHNESS_HEADER), rows)
    details = "\n".join(
        f"Run {run['at'][:16].replace('T', ' ')} ({run.get('start', '')}):\n{_events(run['freshness'])}"
        for run in runs
    )
    work = "\n\n".join(
        f"Store work per applied change, run {run['at'][:16].replace('T', ' ')}:\n\n"
        + _store_work(run["freshness"])
        for run in runs
        if any(r.get("store_work") for r in run["freshness"])
    )
    return "\n\n".join(part for part in (table, details, work) if part)


def render_report(report: Report) -> str:
    fresh = report["freshness"]
    sections = [
        f"# Benchmark report — {report['at'][:16].replace('T', ' ')} UTC",
        f"Host: {report['host']['cores']} cores, {report['host']['memory_gib']:.0f} GiB, shared with other "
        f"engineers' runs; commit `{report['host']['commit']}`; `{report['command']}`; "
        f"{report['duration_s'] / 60:.0f} min. Backlog: {report['events']:,} Debezium Avro records.",
        "## Replicator throughput against the ceilings",
        _throughput(report),
        "## Replicator cost",
        _cost(report),
        f"## Freshness at {_rate(fresh[0]['requested_rate'])} changes/s",
        md_table(FRESHNESS_HEADER, _freshness_rows(fresh)),
        "Quantiles come from the replicators' histograms (buckets up to 10, 30, 60 and 300 s): a value "
        'above 60 s is interpolated inside the (60 s, 300 s] bucket, read it as "over 60 s".',
        "## Highest rate sustained with freshness p99 under 1 s",
        _search(report),
        "## Initial snapshot (backfill)",
        _backfill(report),
        "## Read latency (client and HTTP)",
        _reads(report),
        "## Peer: scylladb/kafka-connect-scylladb",
        _peer(report),
        "## What the replicators did during each freshness run",
        "Group and cache events from the replicators' logs, the local store's memtable flushes "
        "(`store_flush`, from Cassandra's log: a compaction may follow each), and the seconds whose own "
        "p99 reached 1 s, relative to the start of the measured minute (the warm-up load runs before it). "
        "Beside each such second, where the replicators' loops spent it (batch phases and cyclic-GC "
        "pauses, summed over the processes, the three largest) and the share of it in which a runnable "
        "task waited for a core:",
        _events(fresh),
        "## Cores used and waited for during each freshness window (2.0 = the whole machine)",
        _cpu(fresh),
        "## Store work per applied change during each freshness window",
        _store_work(fresh),
    ]
    runs = report.get("freshness_runs") or []
    if runs:
        sections += ["## Freshness, repeat runs (`--freshness-only`)", render_freshness_runs(runs)]
    return "\n\n".join(sections) + "\n"
