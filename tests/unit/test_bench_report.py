"""The benchmark report's pure parts: the rate search's stopping rule, the per-second timeline, the
replicator's log events, and the markdown rendered from a run's JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.freshness import RateStep, next_rate
from bench.peer import missing_artifacts
from bench.report import md_table, ms, per_1000, render_report
from bench.timeline import Second, _spent_part, replicator_events, slow_seconds, spent_between


def test_next_rate_steps_up_after_a_step_that_kept_p99_under_the_bound() -> None:
    steps = [RateStep(1000, 998, 0.2, 0.6, True)]
    assert next_rate(steps, 500) == 1500


def test_next_rate_bisects_between_the_highest_pass_and_the_lowest_miss() -> None:
    steps = [RateStep(1000, 998, 0.2, 0.6, True), RateStep(1500, 1490, 0.4, 1.3, False)]
    assert next_rate(steps, 500) == 1250
    steps.append(RateStep(1250, 1249, 0.3, 0.9, True))
    assert next_rate(steps, 500) == 1375
    steps.append(RateStep(1375, 1370, 0.3, 1.9, False))
    assert next_rate(steps, 500) == 1300  # 1,312.5 to the nearest 25
    steps.append(RateStep(1300, 1302, 0.3, 0.9, True))
    assert next_rate(steps, 500) is None  # 1,300 passed, 1,375 missed: within the resolution


def test_next_rate_halves_while_the_first_rate_and_those_below_it_miss() -> None:
    assert next_rate([RateStep(1000, 1008, 72.6, 295.0, False)], 500) == 500
    steps = [RateStep(1000, 1008, 72.6, 295.0, False), RateStep(500, 503, 9.0, 30.0, False)]
    assert next_rate(steps, 500) == 250


def test_next_rate_bisects_upwards_after_the_first_pass_on_the_way_down() -> None:
    steps = [RateStep(1000, 1008, 72.6, 295.0, False), RateStep(500, 503, 9.0, 30.0, False)]
    steps.append(RateStep(250, 253, 0.2, 0.8, True))
    assert next_rate(steps, 500) == 375
    steps.append(RateStep(375, 376, 0.2, 0.9, True))
    assert next_rate(steps, 500) == 450  # (375 + 500) / 2, to the nearest 25
    steps.append(RateStep(450, 449, 0.3, 4.0, False))
    assert next_rate(steps, 500) is None


def test_next_rate_lets_a_pass_stand_when_a_lower_rate_missed() -> None:
    steps = [RateStep(500, 503, 0.3, 0.8, True), RateStep(400, 401, 0.3, 1.2, False)]
    assert next_rate(steps, 500) == 1000  # no miss above the pass: keep climbing
    steps = [RateStep(500, 503, 0.3, 0.8, True), RateStep(1000, 990, 3.0, 9.0, False)]
    steps.append(RateStep(400, 401, 0.3, 1.2, False))
    assert next_rate(steps, 500) == 750


def test_next_rate_stops_below_its_floor() -> None:
    steps = [RateStep(500, 503, 9.0, 30.0, False), RateStep(250, 251, 5.0, 12.0, False)]
    assert next_rate(steps, 500) is None


def test_next_rate_stops_when_the_load_generator_falls_short_of_the_rate_asked() -> None:
    steps = [RateStep(2500, 2000, 0.2, 0.6, True)]  # 80 % of the rate asked: not sustained
    assert next_rate(steps, 500) is None


def test_slow_seconds_are_those_whose_own_p99_reached_one_second() -> None:
    seconds = [Second(1.0, 0.3, 0.1, 900), Second(2.0, 1.0, 0.8, 950), Second(3.0, math.nan, math.nan, 0)]
    assert [s.at for s in slow_seconds(seconds)] == [2.0]


def test_replicator_events_keep_group_and_cache_events_after_since(tmp_path: Path) -> None:
    log = tmp_path / "replicator.log"
    lines = [
        {
            "event": "partitions_assigned",
            "partitions": 7,
            "timestamp": "2026-12-03T12:00:00Z",
            "level": "info",
        },
        {"event": "batch_applied", "timestamp": "2026-12-03T12:00:01Z"},
        {
            "event": "index_cache_warmed",
            "entries": 300000,
            "seconds": 12.5,
            "timestamp": "2026-12-03T12:00:13Z",
        },
    ]
    log.write_text("not json\n" + "\n".join(json.dumps(line) for line in lines) + "\n")
    since = datetime(2026, 12, 3, 12, 0, 0, 500_000, tzinfo=UTC).timestamp()  # after the assignment
    events = replicator_events(log, since)
    assert [(e.name, e.detail) for e in events] == [("index_cache_warmed", "entries=300000, seconds=12.5")]


def test_replicator_events_of_a_missing_log_are_none(tmp_path: Path) -> None:
    assert replicator_events(tmp_path / "absent.log") == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.8449, "845"), (8.448, "8,448"), (None, "n/a"), (math.nan, "n/a")]
)
def test_ms_prints_whole_milliseconds(seconds: float | None, text: str) -> None:
    assert ms(seconds) == text


def test_per_1000_scales_to_a_thousand_events_and_zero_events_give_zero() -> None:
    assert per_1000(42.0, 200_000) == pytest.approx(0.21)
    assert per_1000(1.0, 0) == 0.0


def test_md_table_has_a_separator_row_per_column() -> None:
    assert md_table(("a", "b"), [["1", "2"]]).splitlines() == ["| a | b |", "| --- | --- |", "| 1 | 2 |"]


def _quantiles(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p90": p99 * 0.8, "p99": p99, "count": 60_000.0}


def _fresh(processes: int, p99: float) -> dict[str, Any]:
    return {
        "driver": "pgbench",
        "processes": processes,
        "requested_rate": 1000.0,
        "achieved_rate": 997.0,
        "seconds": 60.0,
        "freshness": _quantiles(0.2, p99),
        "capture": _quantiles(0.05, 0.1),
        "delivery": _quantiles(0.1, 0.3),
        "cpu": {"replicator": 0.3, "cassandra": 0.35},
        "window": [1000.0, 1060.0],
        "timeline": [
            {
                "at": 1010.0,
                "p99": 2.0,
                "delivery_p99": 1.5,
                "applied": 900.0,
                "spent": {"write": 0.62, "gc": 0.3, "index_read": 0.21, "decode": 0.02},
                "pressure": 0.85,
            }
        ],
        "slow_seconds": 1,
        "events": [{"at": 990.0, "name": "index_cache_warmed", "detail": "entries=300000"}],
        "start": "settled",
    }


REPORT: dict[str, Any] = {
    "at": "2026-12-03T13:00:00+00:00",
    "markdown": "report.md",
    "command": "python -m bench.replicator",
    "host": {"cores": 2, "memory_gib": 24.0, "commit": "abc1234"},
    "events": 1_000_000,
    "duration_s": 1200.0,
    "ceilings": [
        {"name": "bare consume+decode", "events": 1_000_000, "seconds": 40.0, "rate": 25_000.0},
        {"name": "bare CQL writes, 1 process", "events": 200_000, "seconds": 40.0, "rate": 5_000.0},
        {"name": "bare CQL writes, 2 processes", "events": 200_000, "seconds": 25.0, "rate": 8_000.0},
    ],
    "replicator": [
        {
            "processes": 1,
            "events": 1_000_000,
            "seconds": 250.0,
            "median_rate": 4_000.0,
            "rate": 4_000.0,
            "usage": {
                "cpu_seconds": 200.0,
                "peak_rss_bytes": 400 * 2**20,
                "processes": 1,
                "events": 1_000_000,
            },
        },
        {
            "processes": 2,
            "events": 720_000,
            "seconds": 120.0,
            "median_rate": 6_000.0,
            "rate": 6_000.0,
            "usage": {"cpu_seconds": 190.0, "peak_rss_bytes": 800 * 2**20, "processes": 3, "events": 720_000},
        },
    ],
    "freshness": [_fresh(1, 0.6), _fresh(2, 0.7)],
    "rate_search": [
        {"requested": 1000.0, "achieved": 997.0, "p50": 0.2, "p99": 0.7, "passed": True},
        {"requested": 1500.0, "achieved": 1490.0, "p50": 0.4, "p99": 1.4, "passed": False},
    ],
    "rate_search_seconds": 60.0,
    "rate_search_processes": 2,
    "rate_search_stop": "",
    "backfill": {
        "capture": {"rows": 1_000_000, "seconds": 200.0, "customers": 54_825},
        "apply": {"seconds": 250.0, "events": 1_000_000},
        "note": "",
    },
    "reads": None,
    "peer": {"ran": False, "reason": "no `--peer-plugin-dir`"},
}


def test_report_quotes_each_replicator_rate_against_its_own_ceiling() -> None:
    markdown = render_report(REPORT)
    # 1 process: 4,000 against min(25,000, 5,000); 2 processes: 6,000 against min(25,000, 8,000).
    assert "| 4,000 | 0.80 (1 process: lower of decode and CQL x1) |" in markdown
    assert "| 6,000 | 0.75 (2 processes: lower of decode and CQL x2) |" in markdown


def test_report_gives_cpu_seconds_and_peak_rss_per_configuration() -> None:
    markdown = render_report(REPORT)
    assert "| 1 process(es) | 0.200 | 400 | 1,000,000 |" in markdown
    assert "| 2 process(es) | 0.264 | 800 | 720,000 |" in markdown


def test_report_names_the_highest_rate_that_kept_p99_under_one_second() -> None:
    assert "**997 changes/s** (2 processes)" in render_report(REPORT)


def test_report_splits_the_backfill_into_capture_apply_and_their_sum() -> None:
    markdown = render_report(REPORT)
    assert "| capture (Debezium: onboarding -> last snapshot record in Kafka) | 200 | 5,000 |" in markdown
    assert "| end to end (capture, then apply) | 450 | 2,222 |" in markdown


def test_report_marks_a_freshness_run_whose_p99_missed_one_second() -> None:
    report = dict(REPORT, freshness=[_fresh(1, 0.6), _fresh(2, 8.448)])
    rows = [line for line in render_report(report).splitlines() if "(1,000 asked)" in line]
    assert rows[0].endswith("| yes |")
    assert "8,448" in rows[1]
    assert rows[1].endswith("| **no** |")


def test_report_places_events_and_slow_seconds_relative_to_the_measured_window() -> None:
    markdown = render_report(REPORT)
    assert "-10 s index_cache_warmed (entries=300000)" in markdown
    assert "+10 s: 2,000 ms (write 0.62 s, gc 0.30 s, index_read 0.21 s, CPU pressure 85%)" in markdown


def test_report_without_peer_says_why_it_did_not_run() -> None:
    report = dict(REPORT, peer={"ran": False, "reason": "no `--peer-plugin-dir`; build it (bench/peer)"})
    assert "Not run: no `--peer-plugin-dir`; build it (bench/peer)." in render_report(report)


def test_repeat_freshness_runs_say_how_each_was_started() -> None:
    runs = [
        {"at": "2026-12-03T13:40:00+00:00", "start": "cold", "freshness": [_fresh(2, 8.448)]},
        {"at": "2026-12-03T13:46:00+00:00", "start": "settled", "freshness": [_fresh(2, 0.7)]},
    ]
    lines = render_report(dict(REPORT, freshness_runs=runs)).splitlines()
    assert any(line.startswith("| 2026-12-03 13:40 | cold | 2 |") and "**no**" in line for line in lines)
    assert any(
        line.startswith("| 2026-12-03 13:46 | settled | 2 |") and line.endswith("| yes |") for line in lines
    )


def test_peer_plugin_folder_names_each_missing_artifact(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka-connect-scylladb-1.1.7-SNAPSHOT.jar").touch()
    (lib / "java-driver-core-4.19.2.0.jar").touch()  # not on Maven Central: the build cannot use it
    assert missing_artifacts(tmp_path) == ["java-driver-core-4.1[78].*.jar", "guava-*.jar"]
    (lib / "java-driver-core-4.18.0.2.jar").touch()
    (lib / "guava-33.6.0-jre.jar").touch()
    assert missing_artifacts(tmp_path) == []


def test_cpu_section_shows_each_components_wait_beside_its_use_and_the_pressure() -> None:
    contended = [
        _fresh(1, 30.0) | {"cpu_wait": {"replicator": 0.31, "cassandra": 0.2}, "cpu_pressure": 0.86},
        _fresh(2, 30.0) | {"cpu_wait": {"replicator": 0.4}, "cpu_pressure": None},
    ]
    markdown = render_report(REPORT | {"freshness": contended})
    assert "| replicator | 0.30 / 0.31 | 0.30 / 0.40 |" in markdown
    assert "| cassandra | 0.35 / 0.20 | 0.35 / 0.00 |" in markdown
    assert "(CPU pressure, PSI some): 1 process(es): 86%." in markdown


def test_cpu_section_of_a_run_without_waits_shows_use_alone() -> None:
    markdown = render_report(REPORT)
    assert "| replicator | 0.30 | 0.30 |" in markdown
    assert "PSI" not in markdown


def test_store_work_section_gives_reads_and_writes_per_change_by_table_with_their_sum() -> None:
    counted = [
        _fresh(1, 30.0)
        | {
            "store_work": {
                "entity_index": {"reads": 0.626, "writes": 0.036},
                "key_owners": {"reads": 0.195, "writes": 0.011},
            }
        },
        _fresh(2, 30.0) | {"store_work": {"entity_index": {"reads": 0.5, "writes": 0.04}}},
    ]
    markdown = render_report(REPORT | {"freshness": counted})
    section = markdown.split("## Store work per applied change")[1]
    # Tables by their largest work first; a table a run did not touch shows a dash.
    assert section.index("| entity_index |") < section.index("| key_owners |")
    assert "| entity_index | 0.626 / 0.036 | 0.500 / 0.040 |" in section
    assert "| key_owners | 0.195 / 0.011 | - |" in section
    assert "| **all tables** | **0.821 / 0.047** | **0.500 / 0.040** |" in section


def test_store_work_section_of_a_store_without_counts_says_so() -> None:
    markdown = render_report(REPORT)
    assert "Not counted: the store keeps no per-table request counts" in markdown


def test_time_spent_between_two_scrapes_is_the_sums_difference_largest_first() -> None:
    before = {"write": 10.0, "index_read": 4.0, "gc": 1.0}
    after = {"write": 10.6, "index_read": 4.1, "gc": 1.3, "decode": 0.05}
    spent = spent_between(before, after)
    assert list(spent) == ["write", "gc", "index_read", "decode"]
    assert spent["write"] == pytest.approx(0.6)


def test_a_part_whose_sum_went_down_counts_from_zero() -> None:
    # A process restarted between the scrapes: its sum starts again from nothing.
    assert spent_between({"write": 10.0}, {"write": 0.4}) == {"write": 0.4}


def test_a_timeline_second_is_parsed_from_the_replicators_metrics_text() -> None:
    assert _spent_part('scv_batch_phase_seconds_sum{phase="write"} 12.5') == ("write", 12.5)
    assert _spent_part('scv_gc_pause_seconds_sum{generation="2"} 0.75') == ("gc", 0.75)
    assert _spent_part('scv_batch_phase_seconds_count{phase="write"} 3.0') is None
