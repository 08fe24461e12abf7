"""The pure rules behind consumption holds: when a poison storm trips, where a partition starts."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING

from consumer.offset_gaps import gap_message, starting_point
from consumer.poison_storm import PoisonStormGuard


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_poison_storm_trips_at_the_threshold_within_the_window() -> None:
    clock = Clock()
    guard = PoisonStormGuard(threshold=3, window_s=10.0, clock=clock)
    assert [guard.parked("crm") for _ in range(2)] == [False, False]
    assert guard.parked("crm") is True


def test_dead_letters_spread_over_more_than_the_window_do_not_trip() -> None:
    clock = Clock()
    guard = PoisonStormGuard(threshold=3, window_s=10.0, clock=clock)
    for _ in range(10):
        assert guard.parked("crm") is False
        clock.now += 6.0


def test_a_storm_is_counted_per_source_and_forgotten_on_resume() -> None:
    guard = PoisonStormGuard(threshold=2, window_s=10.0, clock=Clock())
    assert guard.parked("crm") is False
    assert guard.parked("core") is False
    guard.forget("crm")
    assert guard.parked("crm") is False
    assert guard.parked("core") is True


def test_a_zero_threshold_turns_the_guard_off() -> None:
    guard = PoisonStormGuard(threshold=0, window_s=10.0, clock=Clock())
    assert not any(guard.parked("crm") for _ in range(1000))


@pytest.mark.parametrize(
    ("committed", "low", "high", "offset", "gap"),
    [
        (None, 0, 10, OFFSET_BEGINNING, 0),  # a new group starts from the beginning
        (None, 500, 900, OFFSET_BEGINNING, 0),
        (600, 500, 900, 600, 0),
        (500, 500, 900, 500, 0),
        (900, 500, 900, 900, 0),  # caught up
        (120, 500, 900, 120, 380),  # retention deleted 120..499 before they were consumed
        (950, 0, 10, 950, -940),  # the topic was recreated
    ],
)
def test_a_partition_starts_at_its_committed_offset_or_stops_at_a_gap(
    committed: int | None, low: int, high: int, offset: int, gap: int
) -> None:
    point = starting_point(committed, low, high)
    assert (point.offset, point.gap, point.stopped) == (offset, gap, gap != 0)


def test_the_gap_error_names_the_lost_records_and_the_recovery() -> None:
    message = gap_message("crm.public.customers", 3, 120, 500, 900, "crm")
    assert "records 120..499 were deleted by retention" in message
    assert "`scv sources resnapshot crm`" in message
