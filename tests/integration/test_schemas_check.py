"""`scv schemas export/check` against the real registry and PostgreSQL: incompatible DDL is caught
before the connector meets it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import SchemaDrift
from connectors.onboard import add_source
from connectors.schemas import check_schemas, export_schemas
from scv.config.settings import Settings
from tests.integration.test_sources_lifecycle import (  # noqa: F401 - fixture
    LiveSource,
    create_source,
    drop_source,
    migrated,
)

pytestmark = pytest.mark.integration

SQL = """
CREATE TABLE drop_me (id bigint PRIMARY KEY, customer_id bigint NOT NULL, tier text NOT NULL);
CREATE TABLE retype (id bigint PRIMARY KEY, customer_id bigint NOT NULL, points bigint NOT NULL);
CREATE TABLE tighten (id bigint PRIMARY KEY, customer_id bigint NOT NULL, nickname text);
CREATE TABLE grow (id bigint PRIMARY KEY, customer_id bigint NOT NULL);
INSERT INTO drop_me VALUES (1, 10, 'gold');
INSERT INTO retype VALUES (1, 10, 5);
INSERT INTO tighten VALUES (1, 10, 'x');
INSERT INTO grow VALUES (1, 10);
"""
TABLES = "".join(
    f"  public.{t}: {{kind: {t}, customer_key: customer_id}}\n"
    for t in ("drop_me", "retype", "tighten", "grow")
)


@pytest.fixture(scope="module")
def contracts(
    migrated: Settings,  # noqa: F811 - the session fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveSource, Path]]:
    stack = migrated
    source = create_source(stack, "contract", SQL, TABLES)
    add_source(source.spec, stack, timeout_s=240)
    directory = tmp_path_factory.mktemp("registry_schemas")
    export_schemas(source.name, stack, directory)
    yield source, directory
    drop_source(source)


def _problems(stack: Settings, source: LiveSource, directory: Path) -> list[str]:
    with pytest.raises(SchemaDrift) as info:
        check_schemas(stack, directory, source.name)
    return info.value.problems


def test_export_writes_key_and_value_contracts(contracts: tuple[LiveSource, Path]) -> None:
    source, directory = contracts
    names = {p.name for p in (directory / "sources" / source.name).glob("*.avsc")}
    assert f"{source.name}.public.drop_me-value.avsc" in names
    assert f"{source.name}.public.drop_me-key.avsc" in names


def test_check_passes_before_any_ddl(contracts: tuple[LiveSource, Path], stack: Settings) -> None:
    source, directory = contracts
    infos = check_schemas(stack, directory, source.name)
    assert any("public.grow: contract, registry and table agree" in i for i in infos)


def test_check_nullable_column_added_is_only_info(
    contracts: tuple[LiveSource, Path], stack: Settings
) -> None:
    source, directory = contracts
    source.sql("ALTER TABLE grow ADD COLUMN note text")
    try:
        infos = check_schemas(stack, directory, source.name)
        assert any("public.grow.note was added" in i for i in infos)
    finally:
        source.sql("ALTER TABLE grow DROP COLUMN note")


def test_check_catches_drop_of_not_null_column(contracts: tuple[LiveSource, Path], stack: Settings) -> None:
    source, directory = contracts
    source.sql("ALTER TABLE drop_me DROP COLUMN tier")
    try:
        problems = _problems(stack, source, directory)
        problem = next(p for p in problems if "public.drop_me.tier was dropped" in p)
        assert "no default in the contract" in problem
        assert "DROP NOT NULL" in problem
    finally:
        source.sql("ALTER TABLE drop_me ADD COLUMN tier text NOT NULL DEFAULT 'gold'")


def test_check_catches_type_change_registry_would_reject(
    contracts: tuple[LiveSource, Path], stack: Settings
) -> None:
    source, directory = contracts
    source.sql("ALTER TABLE retype ALTER COLUMN points TYPE text")
    try:
        problems = _problems(stack, source, directory)
        assert any("public.retype.points changed type to text" in p for p in problems), problems
        assert any("public.retype: the registry (BACKWARD) would REJECT" in p for p in problems)
    finally:
        source.sql("ALTER TABLE retype ALTER COLUMN points TYPE bigint USING points::bigint")


def test_check_catches_not_null_added(contracts: tuple[LiveSource, Path], stack: Settings) -> None:
    source, directory = contracts
    source.sql("ALTER TABLE tighten ALTER COLUMN nickname SET NOT NULL")
    try:
        problems = _problems(stack, source, directory)
        assert any(
            "public.tighten: the registry (BACKWARD) would REJECT" in p and "not_null:nickname" in p
            for p in problems
        )
    finally:
        source.sql("ALTER TABLE tighten ALTER COLUMN nickname DROP NOT NULL")


def test_check_catches_primary_key_change(contracts: tuple[LiveSource, Path], stack: Settings) -> None:
    source, directory = contracts
    source.sql("ALTER TABLE grow DROP CONSTRAINT grow_pkey, ADD PRIMARY KEY (id, customer_id)")
    try:
        problems = _problems(stack, source, directory)
        assert any(
            "public.grow: primary key changed from ['id'] to ['id', 'customer_id']" in p for p in problems
        )
    finally:
        source.sql("ALTER TABLE grow DROP CONSTRAINT grow_pkey, ADD PRIMARY KEY (id)")
