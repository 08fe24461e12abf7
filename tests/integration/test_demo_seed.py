"""`scv demo seed` and `scv demo workload` against the stack's PostgreSQL.

Seeds under a test prefix (``demo_test_crm``...), so these tests never disturb the demo databases
that connectors may be streaming from in the same session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from connectors.spec import load_spec
from demo.connect import connect
from demo.exceptions import SeedConflict
from demo.generator import generate
from demo.model import DATABASES, TABLES, database_names
from demo.pgbench import run_pgbench_workload
from demo.secrets import CDC_ROLES, read_password
from demo.seed import SeedReport, seed_demo
from demo.workload import run_workload
from scv.config.settings import Settings

pytestmark = pytest.mark.integration

SPECS = Path(__file__).resolve().parents[2] / "connectors" / "sources"
PREFIX = "demo_test_"
CUSTOMERS = 60
SEED = 11
NAMES = database_names(PREFIX)


@pytest.fixture(scope="module")
def seeded(stack: Settings) -> Iterator[SeedReport]:
    yield seed_demo(stack, customers=CUSTOMERS, seed=SEED, reset=True, database_prefix=PREFIX)
    with connect(stack) as admin:
        for name in NAMES.values():
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def crm(stack: Settings, seeded: SeedReport) -> Iterator[psycopg.Connection[TupleRow]]:
    with connect(stack, NAMES["crm"]) as conn:
        yield conn


def _scalar(conn: psycopg.Connection[TupleRow], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _customers_with_two_primary_emails(crm: psycopg.Connection[TupleRow]) -> object:
    return _scalar(
        crm,
        "SELECT count(*) FROM (SELECT customer_id FROM customer_emails GROUP BY customer_id "
        "HAVING count(*) FILTER (WHERE is_primary) > 1) multi",
    )


def test_seed_loads_exactly_the_generated_rows(seeded: SeedReport) -> None:
    expected: Counter[str] = Counter()
    for batch in generate(CUSTOMERS, SEED):
        expected.update({key: len(rows) for key, rows in batch.rows.items()})
    for outcome in seeded.databases:
        assert outcome.action == "seeded"
        for table, count in outcome.rows.items():
            assert count == expected[f"{outcome.source}.{table}"], f"{outcome.name}.{table}"


def test_seed_twice_is_idempotent(stack: Settings, seeded: SeedReport) -> None:
    again = seed_demo(stack, customers=CUSTOMERS, seed=SEED, database_prefix=PREFIX)
    assert [d.action for d in again.databases] == ["already_seeded"] * 3
    assert [d.rows for d in again.databases] == [d.rows for d in seeded.databases]


def test_seed_with_another_seed_refuses_and_names_reset(stack: Settings, seeded: SeedReport) -> None:
    with pytest.raises(SeedConflict, match="--reset"):
        seed_demo(stack, customers=CUSTOMERS, seed=SEED + 1, database_prefix=PREFIX)


def test_columns_have_the_documented_types(crm: psycopg.Connection[TupleRow], stack: Settings) -> None:
    types = dict(
        crm.execute(
            "SELECT column_name, format_type(atttypid, atttypmod) FROM pg_attribute a "
            "JOIN information_schema.columns c ON c.column_name = a.attname "
            "AND c.table_name = 'customers' AND c.table_schema = 'public' "
            "WHERE a.attrelid = 'public.customers'::regclass"
        ).fetchall()
    )
    assert types["tags"] == "text[]"
    assert types["preferences"] == "jsonb"
    assert types["external_ref"] == "uuid"
    assert types["acquisition_channel"] == "acquisition_channel"
    assert types["updated_at"] == "timestamp with time zone"
    with connect(stack, NAMES["core"]) as core:
        balance = _scalar(
            core,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'public.accounts'::regclass AND attname = 'balance'",
        )
    assert balance == "numeric(18,2)"


def test_consents_have_a_composite_primary_key(crm: psycopg.Connection[TupleRow]) -> None:
    columns = crm.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'public.consents'::regclass AND i.indisprimary "
        "ORDER BY a.attnum"
    ).fetchall()
    assert [c[0] for c in columns] == ["customer_id", "purpose"]


@pytest.mark.parametrize("source", DATABASES)
def test_every_table_has_a_primary_key_and_default_replica_identity(
    stack: Settings, seeded: SeedReport, source: str
) -> None:
    with connect(stack, NAMES[source]) as conn:
        rows = conn.execute(
            "SELECT c.relname, c.relreplident, EXISTS (SELECT 1 FROM pg_index i "
            "WHERE i.indrelid = c.oid AND i.indisprimary) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchall()
    tables = {name for name, _, _ in rows}
    assert tables == {t.name for t in TABLES[source]} | {"scv_signal", "scv_heartbeat"}
    assert all(identity == "d" and has_pk for _, identity, has_pk in rows)


@pytest.mark.parametrize("source", DATABASES)
def test_publication_carries_the_spec_tables_signal_and_heartbeat(
    stack: Settings, seeded: SeedReport, source: str
) -> None:
    with connect(stack, NAMES[source]) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
            (f"scv_{source}",),
        ).fetchall()
    spec = load_spec(SPECS / f"{source}.yaml")
    assert {r[0] for r in rows} == {*spec.tables, "public.scv_signal", "public.scv_heartbeat"}


def test_some_interaction_notes_are_toasted_out_of_line(stack: Settings, seeded: SeedReport) -> None:
    with connect(stack, NAMES["care"]) as conn:
        toast = _scalar(
            conn, "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'interactions'"
        )
        chunks = _scalar(conn, f"SELECT count(DISTINCT chunk_id) FROM {toast}")
    assert isinstance(chunks, int)
    assert chunks > 0


def test_cdc_role_reads_tables_and_writes_only_the_signal_table(stack: Settings, seeded: SeedReport) -> None:
    pg = stack.postgres
    password = read_password(stack, CDC_ROLES["crm"])
    dsn = f"host={pg.host} port={pg.port} dbname={NAMES['crm']} user=cdc_crm"
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        assert _scalar(conn, "SELECT count(*) FROM customers") == CUSTOMERS
        assert _scalar(conn, "SELECT rolreplication FROM pg_roles WHERE rolname = current_user") is True
        conn.execute("INSERT INTO scv_signal (id, type, data) VALUES ('t-1', 'log', '{}')")
        conn.execute("DELETE FROM scv_signal WHERE id = 't-1'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE customers SET vip = true WHERE customer_id = 1")


def test_workload_reaches_the_requested_rate_with_all_kinds_of_change(
    stack: Settings, seeded: SeedReport
) -> None:
    stats = run_workload(stack, rate=200, max_changes=600, seed=5, database_prefix=PREFIX, report_every_s=1)
    assert stats.changes == 600
    # 600 changes at 200/s take 3 s; pacing may lag a little but never run ahead.
    assert 150 <= stats.achieved_rate <= 205
    assert stats.rows_inserted > 0
    assert stats.rows_updated > 0
    assert stats.rows_deleted > 0
    assert sum(stats.per_operation.values()) == stats.changes


def test_workload_stops_at_its_duration(stack: Settings, seeded: SeedReport) -> None:
    stats = run_workload(stack, rate=100, duration_s=2.0, database_prefix=PREFIX)
    assert 1.9 <= stats.elapsed_s <= 2.5
    assert 150 <= stats.changes <= 200


def test_workload_keeps_one_primary_email_per_customer(
    stack: Settings, seeded: SeedReport, crm: psycopg.Connection[TupleRow]
) -> None:
    run_workload(stack, rate=500, max_changes=500, seed=6, database_prefix=PREFIX, workers=4)
    assert _customers_with_two_primary_emails(crm) == 0


def _table_activity(stack: Settings) -> Counter[tuple[str, str, str]]:
    """(database, table, ins|upd|del) -> rows, from PostgreSQL's cumulative statistics."""
    activity: Counter[tuple[str, str, str]] = Counter()
    for source, name in NAMES.items():
        with connect(stack, name) as conn:
            for table, ins, upd, dele in conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            ).fetchall():
                activity.update(
                    {(source, table, "ins"): ins, (source, table, "upd"): upd, (source, table, "del"): dele}
                )
    return activity


def test_pgbench_drives_the_same_mix_server_side(
    stack: Settings, seeded: SeedReport, crm: psycopg.Connection[TupleRow]
) -> None:
    before = _table_activity(stack)
    running: list[Settings] = []
    stats = run_pgbench_workload(
        stack, rate=300, duration_s=4, database_prefix=PREFIX, on_started=lambda: running.append(stack)
    )
    assert running == [stack]  # told once, so a caller can time a window inside the load
    # pgbench paces a Poisson process at the mean rate: ~1,200 operations, none failed.
    assert 900 <= stats.changes <= 1500
    assert set(stats.transactions) == {"crm", "core", "care"}
    assert stats.transactions["core"] > stats.transactions["care"]  # weights 45 against 15
    after = _table_activity(stack)
    changed = {key for key in after if after[key] > before.get(key, 0)}
    for expected in [
        ("crm", "customer_emails", "ins"),
        ("crm", "customer_emails", "upd"),
        ("crm", "customer_emails", "del"),
        ("crm", "consents", "upd"),
        ("crm", "customers", "upd"),
        ("core", "accounts", "upd"),
        ("core", "orders", "ins"),
        ("core", "orders", "upd"),
        ("care", "interactions", "ins"),
        ("care", "interactions", "upd"),
        ("care", "surveys", "ins"),
    ]:
        assert expected in changed, expected
    # Concurrent clients never interleave on one customer: still one primary e-mail each.
    assert _customers_with_two_primary_emails(crm) == 0
