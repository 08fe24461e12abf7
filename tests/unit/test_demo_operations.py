"""The workload's operation mix: every kind of change, in every demo database, seeded and weighted."""

from __future__ import annotations

import random
from collections import Counter

from demo.model import DATABASES
from demo.operations import OPERATIONS, pick_operation
from demo.workload import default_workers


def test_operations_cover_all_three_databases() -> None:
    assert {op.database for op in OPERATIONS} == set(DATABASES)


def test_operation_names_are_unique() -> None:
    assert len({op.name for op in OPERATIONS}) == len(OPERATIONS)


def test_pick_follows_the_weights() -> None:
    rng = random.Random(3)
    picks = Counter(pick_operation(rng).name for _ in range(50_000))
    total_weight = sum(op.weight for op in OPERATIONS)
    for op in OPERATIONS:
        expected = 50_000 * op.weight / total_weight
        assert abs(picks[op.name] - expected) < 0.2 * expected + 30, op.name


def test_pick_is_repeatable_for_a_seed() -> None:
    first = [pick_operation(random.Random(9)).name for _ in range(5)]
    again = [pick_operation(random.Random(9)).name for _ in range(5)]
    assert first == again


def test_default_workers_grow_with_rate_up_to_a_cap() -> None:
    assert default_workers(50) == 1
    assert default_workers(1000) > default_workers(200)
    assert default_workers(float("inf")) == 8
