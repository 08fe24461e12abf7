"""The server-side operations (demo/server_ops.py) are the Python workload's mix, operation for
operation: same names, same databases, same weights."""

from __future__ import annotations

import re

import pytest

from demo.operations import OPERATIONS
from demo.server_ops import FUNCTIONS, SCHEMA, database_weight, render_functions


@pytest.mark.parametrize("database", ["crm", "core", "care"])
def test_every_python_operation_has_a_server_function_in_its_database(database: str) -> None:
    expected = [op.name for op in OPERATIONS if op.database == database]
    assert list(FUNCTIONS[database]) == expected


@pytest.mark.parametrize("database", ["crm", "core", "care"])
def test_step_picks_operations_with_the_python_weights(database: str) -> None:
    sql = render_functions(database)
    bounds = [(int(bound), name) for bound, name in re.findall(r"roll < (\d+) THEN op := '(\w+)'", sql)]
    previous = [0] + [bound for bound, _ in bounds[:-1]]
    weights = {name: bound - low for low, (bound, name) in zip(previous, bounds, strict=True)}
    assert weights == {op.name: op.weight for op in OPERATIONS if op.database == database}
    assert f"roll := random() * {database_weight(database)};" in sql


def test_rendering_is_deterministic_for_a_seed() -> None:
    assert render_functions("care", seed=3) == render_functions("care", seed=3)
    assert render_functions("care", seed=3) != render_functions("care", seed=4)


def test_every_function_lives_in_the_workload_schema() -> None:
    for database in ("crm", "core", "care"):
        created = re.findall(r"CREATE OR REPLACE FUNCTION (\w+)\.", render_functions(database))
        assert created
        assert set(created) == {SCHEMA}


def test_unknown_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no demo database 'erp'"):
        render_functions("erp")
