"""Validation rules over database facts (pure): each failure names the key and the fix.

The wal_level rule is tested here with a fake of the query layer's facts because flipping wal_level on
the shared server needs a restart; every other rule is also exercised against the real PostgreSQL in
tests/integration/test_sources_validate.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.database import (
    ColumnFacts,
    DatabaseFacts,
    PublicationFacts,
    RoleFacts,
    ServerFacts,
    SlotFacts,
    TableFacts,
)
from connectors.spec import SourceSpec, parse_spec
from connectors.validate import ClusterFacts, check_cluster, check_database

SPEC = """
name: loyalty
database: {host: 127.0.0.1, dbname: loyalty, user: cdc_loyalty, password_env: LOYALTY_PW}
tables:
  public.members: {kind: member, customer_key: customer_id}
  public.rewards: {kind: reward, customer_key: {via: public.members, column: member_id}}
"""
ORIGIN = "loyalty.yaml"


def _col(name: str, type_: str = "bigint", not_null: bool = True) -> ColumnFacts:
    return ColumnFacts(name, type_, not_null, False)


def _table(name: str, columns: list[ColumnFacts], pk: tuple[str, ...]) -> TableFacts:
    return TableFacts(
        name=name,
        exists=True,
        columns={c.name: c for c in columns},
        primary_key=pk,
        can_select=True,
        can_insert=True,
        can_update=True,
    )


def _facts(**changes: object) -> DatabaseFacts:
    tables = {
        "public.members": _table(
            "public.members", [_col("member_id"), _col("customer_id"), _col("email", "text")], ("member_id",)
        ),
        "public.rewards": _table("public.rewards", [_col("reward_id"), _col("member_id")], ("reward_id",)),
        "public.scv_signal": _table(
            "public.scv_signal",
            [_col("id", "text"), _col("type", "text"), _col("data", "text", False)],
            ("id",),
        ),
        "public.scv_heartbeat": _table(
            "public.scv_heartbeat",
            [_col("source", "text"), _col("beat_at", "timestamp with time zone")],
            ("source",),
        ),
    }
    facts = DatabaseFacts(
        server=ServerFacts("logical", 10, 2, 10, 2),
        role=RoleFacts("cdc_loyalty", superuser=False, replication=True),
        tables=tables,
        slots={},
        publication=PublicationFacts("scv_loyalty", False, frozenset(tables)),
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


@pytest.fixture
def spec() -> SourceSpec:
    return parse_spec(SPEC, ORIGIN)


def _one(problems: list[str], needle: str) -> str:
    found = [p for p in problems if needle in p]
    assert len(found) == 1, problems
    return found[0]


def test_validate_good_facts_have_no_problems(spec: SourceSpec) -> None:
    report = check_database(spec, _facts(), ORIGIN)
    assert report.problems == []
    assert any("REPLICA IDENTITY DEFAULT" in info and "index" in info for info in report.infos)


def test_validate_wal_level_replica_is_refused_with_alter_system(spec: SourceSpec) -> None:
    report = check_database(spec, _facts(server=ServerFacts("replica", 10, 2, 10, 2)), ORIGIN)
    problem = _one(report.problems, "wal_level")
    assert "ALTER SYSTEM SET wal_level = logical" in problem
    assert problem.startswith("loyalty.yaml: database:")


def test_validate_no_free_slot_is_refused(spec: SourceSpec) -> None:
    report = check_database(spec, _facts(server=ServerFacts("logical", 4, 4, 10, 2)), ORIGIN)
    assert "max_replication_slots = 5" in _one(report.problems, "replication slot")


def test_validate_no_free_wal_sender_is_refused(spec: SourceSpec) -> None:
    report = check_database(spec, _facts(server=ServerFacts("logical", 10, 2, 3, 3)), ORIGIN)
    assert "max_wal_senders = 4" in _one(report.problems, "WAL sender")


def test_validate_existing_own_slot_needs_no_free_slot(spec: SourceSpec) -> None:
    slots = {"scv_loyalty": SlotFacts("scv_loyalty", "loyalty", "pgoutput", False)}
    report = check_database(spec, _facts(server=ServerFacts("logical", 2, 2, 10, 2), slots=slots), ORIGIN)
    assert report.problems == []
    assert any("resumes" in info for info in report.infos)


def test_validate_replica_identity_nothing_is_refused(spec: SourceSpec) -> None:
    facts = _facts()
    facts.tables["public.members"] = replace(facts.tables["public.members"], replica_identity="n")
    report = check_database(spec, facts, ORIGIN)
    assert "REPLICA IDENTITY DEFAULT" in _one(report.problems, "NOTHING")


def test_validate_via_target_needs_single_column_primary_key(spec: SourceSpec) -> None:
    facts = _facts()
    facts.tables["public.members"] = replace(
        facts.tables["public.members"], primary_key=("member_id", "customer_id")
    )
    report = check_database(spec, facts, ORIGIN)
    assert "single-column primary key" in _one(report.problems, "tables.public.rewards.customer_key.via")


def test_validate_hash_of_non_string_column_is_refused() -> None:
    spec = parse_spec(
        SPEC.replace("customer_key: customer_id}", "customer_key: customer_id, hash_columns: [member_id]}"),
        ORIGIN,
    )
    report = check_database(spec, _facts(), ORIGIN)
    assert any("hash_columns" in p for p in report.problems)


def test_validate_publication_missing_tables_gives_alter_publication(spec: SourceSpec) -> None:
    facts = _facts(publication=PublicationFacts("scv_loyalty", False, frozenset({"public.members"})))
    report = check_database(spec, facts, ORIGIN)
    assert "ALTER PUBLICATION scv_loyalty SET TABLE" in _one(report.problems, "does not publish")


def test_validate_auto_publication_is_filtered_when_user_owns_tables(spec: SourceSpec) -> None:
    facts = _facts(publication=None, role=RoleFacts("cdc_loyalty", False, True, can_create=True))
    for name, table in list(facts.tables.items()):
        facts.tables[name] = replace(table, owned_by_user=True)
    report = check_database(spec, facts, ORIGIN)
    assert report.problems == []
    assert report.choices.publication_mode == "filtered"


def test_validate_auto_publication_is_disabled_for_least_privilege_user(spec: SourceSpec) -> None:
    report = check_database(spec, _facts(), ORIGIN)
    assert report.choices.publication_mode == "disabled"


def test_validate_missing_heartbeat_table_is_info_and_drops_action_query(spec: SourceSpec) -> None:
    facts = _facts()
    facts.tables["public.scv_heartbeat"] = TableFacts("public.scv_heartbeat", exists=False)
    report = check_database(spec, facts, ORIGIN)
    assert report.problems == []
    assert report.choices.heartbeat_action is False
    assert any("heartbeat_table" in info for info in report.infos)


def test_cluster_connector_name_taken_by_other_database_is_refused(spec: SourceSpec) -> None:
    cluster = ClusterFacts(
        {
            "scv-loyalty": {
                "database.hostname": "10.0.0.9",
                "database.port": "5432",
                "database.dbname": "other",
            }
        },
        frozenset(),
    )
    assert "choose another name" in _one(check_cluster(spec, cluster, ORIGIN).problems, "scv-loyalty")


def test_cluster_other_connector_with_same_prefix_is_refused(spec: SourceSpec) -> None:
    cluster = ClusterFacts({"legacy": {"topic.prefix": "loyalty"}}, frozenset())
    assert "prefix" in _one(check_cluster(spec, cluster, ORIGIN).problems, "legacy")


@pytest.mark.parametrize(
    "column_type", ["money[]", "interval[]", "point[]", "xml[]", "bit varying(8)[]", "bit(3)[]"]
)
def test_validate_refuses_an_array_type_debezium_cannot_carry(spec: SourceSpec, column_type: str) -> None:
    facts = _facts()
    members = facts.tables["public.members"]
    columns = {**members.columns, "history": _col("history", column_type, False)}
    facts.tables["public.members"] = replace(members, columns=columns)
    problem = _one(check_database(spec, facts, ORIGIN).problems, "history")
    assert f"public.members.history is {column_type}, which Debezium cannot carry" in problem
    assert "exclude_columns" in problem


def test_validate_accepts_an_uncarried_array_that_is_excluded() -> None:
    spec = parse_spec(SPEC.replace("kind: member,", "kind: member, exclude_columns: [history],"), ORIGIN)
    facts = _facts()
    members = facts.tables["public.members"]
    facts.tables["public.members"] = replace(
        members, columns={**members.columns, "history": _col("history", "point[]", False)}
    )
    assert not [p for p in check_database(spec, facts, ORIGIN).problems if "history" in p]
