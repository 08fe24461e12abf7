"""Offset -> time estimates from outside the consumer (scv/exporter/timeline.py)."""

from __future__ import annotations

import pytest

from scv.exporter.timeline import OffsetTimeline


def _timeline(*points: tuple[int, float], size: int = 120) -> OffsetTimeline:
    timeline = OffsetTimeline(size)
    for end, at in points:
        timeline.observe(end, at)
    return timeline


def test_lag_is_zero_when_the_group_has_committed_the_end_offset() -> None:
    timeline = _timeline((100, 0.0), (120, 10.0))
    assert timeline.lag_seconds(committed=120, now=50.0) == 0.0


def test_record_time_is_interpolated_between_the_polls_that_bracket_it() -> None:
    # 10 records arrived between t=10 (end 100) and t=20 (end 110): record 104 is the fifth.
    timeline = _timeline((100, 10.0), (110, 20.0))
    assert timeline.written_at(104) == pytest.approx(15.0)
    assert timeline.written_at(109) == pytest.approx(20.0)


def test_lag_keeps_growing_while_the_committed_offset_is_stuck() -> None:
    timeline = _timeline((100, 10.0), (110, 20.0))
    first = timeline.lag_seconds(committed=105, now=30.0)
    timeline.observe(130, 40.0)  # the source keeps producing, the consumer does not move
    second = timeline.lag_seconds(committed=105, now=40.0)
    assert second == pytest.approx(first + 10.0)


def test_an_idle_partition_keeps_when_its_next_record_arrived() -> None:
    # Idle at end 100 for 100 s (ten polls), then one record: it arrived after the last idle poll.
    timeline = _timeline(*[(100, float(t)) for t in range(0, 101, 10)], (101, 105.0))
    assert len(timeline) == 3  # the idle run is kept as its first and last point
    assert timeline.written_at(100) == pytest.approx(105.0)
    assert timeline.lag_seconds(committed=100, now=110.0) == pytest.approx(5.0)


def test_offsets_older_than_the_table_are_extrapolated_at_its_average_rate() -> None:
    # One record per second; record 999 was readable at t=100 (end 1000), so record 989 at t=90.
    timeline = _timeline((1000, 100.0), (1010, 110.0))
    assert timeline.written_at(989) == pytest.approx(90.0)


def test_without_any_rate_the_oldest_point_bounds_the_estimate() -> None:
    timeline = _timeline((500, 100.0), (500, 160.0))
    assert timeline.lag_seconds(committed=400, now=200.0) == pytest.approx(100.0)


def test_a_seed_from_a_record_timestamp_gives_the_true_age_at_first_sight() -> None:
    timeline = _timeline((500, 1000.0))
    # The group waits at offset 420, whose record was written at t=700.
    timeline.seed(421, 700.0)
    assert timeline.lag_seconds(committed=420, now=1000.0) == pytest.approx(300.0)


def test_a_seed_that_contradicts_the_observations_is_ignored() -> None:
    timeline = _timeline((500, 1000.0))
    timeline.seed(600, 900.0)  # an end offset beyond what was seen later cannot be true
    assert len(timeline) == 1


def test_a_partition_that_went_backwards_starts_a_new_history() -> None:
    timeline = _timeline((500, 0.0), (600, 10.0), (3, 20.0))
    assert len(timeline) == 1
    assert timeline.end_offset == 3


def test_the_table_keeps_only_its_newest_points() -> None:
    timeline = _timeline(*[(i, float(i)) for i in range(10)], size=4)
    assert len(timeline) == 4
    assert timeline.written_at(7) == pytest.approx(8.0)


def test_an_lsn_age_uses_the_same_arithmetic() -> None:
    # The server's WAL position, sampled every 5 s; the slot confirmed up to 0x2000.
    timeline = _timeline((0x1000, 0.0), (0x3000, 5.0), (0x5000, 10.0))
    assert timeline.lag_seconds(committed=0x2000, now=10.0) == pytest.approx(7.5, abs=0.01)
