"""`scv verify` on the real stack: a clean view passes; a row deleted from the view, a row changed in the
view and an extra entity are each found (naming customer, source, table and entity) and repaired."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from cassandra.cluster import Session

from scv.config.settings import Settings
from scv.verify.reconcile import Progress, VerifyOptions, verify
from tests.integration.conftest import REPO, ReplicatorProcess, SourceDatabase, SourceFactory, wait_for

SCHEMA = """
CREATE TABLE public.customers (
    customer_id bigint PRIMARY KEY, name text NOT NULL, balance numeric(12, 2), born date,
    seen_at timestamptz, tags text[], prefs jsonb, active boolean
);
CREATE TABLE public.notes (note_id bigint PRIMARY KEY, customer_id bigint NOT NULL, body text);
INSERT INTO public.customers VALUES
    (1, 'Ada', 10.50, '1990-02-28', '2024-03-01 10:00:00.123456+02', ARRAY['a', 'b c'], '{"x": 1}', true),
    (2, 'Grace', NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 'Linus', 0.00, '1969-12-28', '2000-01-01 00:00:00+00', '{}', '[]', false);
INSERT INTO public.notes VALUES (10, 1, 'first'), (11, 2, 'second'), (12, 3, 'third');
"""
TABLES = """\
  public.customers: {kind: profile, customer_key: customer_id}
  public.notes: {kind: note, customer_key: customer_id}
"""


@pytest.fixture(scope="module")
def ledger(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    return source_database(SCHEMA, TABLES)


def _verify(stack: Settings, session: Session, source: str, group: str) -> list[tuple[str, str, str | None]]:
    report = verify(
        stack, session, VerifyOptions(source=source, group=group, settle_timeout_s=60), Progress()
    )
    return sorted((f.problem, f.table, f.entity_id) for f in report.findings)


def _cli(stack: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "scv", "verify", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_clean_view_verifies_clean(
    ledger: SourceDatabase, stack: Settings, store_session: Session, replicator: ReplicatorProcess
) -> None:
    wait_for(
        lambda: _verify(stack, store_session, ledger.name, replicator.group_id) == [],
        timeout_s=120,
        what="the snapshot in the view, verified clean",
        every_s=2,
    )


def test_drift_is_found_by_name_then_repaired(
    ledger: SourceDatabase, stack: Settings, store_session: Session, replicator: ReplicatorProcess
) -> None:
    ks = stack.store.keyspace
    wait_for(
        lambda: _verify(stack, store_session, ledger.name, replicator.group_id) == [],
        timeout_s=120,
        what="a clean start",
        every_s=2,
    )
    # A row deleted from the view, a row changed in the view, an entity the source never had.
    store_session.execute(
        f"DELETE FROM {ks}.customer_view WHERE customer_id = '2' AND kind = 'profile' AND source = %s "
        "AND table_name = 'public.customers' AND entity_id = '2'",
        (ledger.name,),
    )
    store_session.execute(
        f"UPDATE {ks}.customer_view SET attributes['name'] = 's:Tampered' WHERE customer_id = '1' "
        "AND kind = 'profile' AND source = %s AND table_name = 'public.customers' AND entity_id = '1'",
        (ledger.name,),
    )
    store_session.execute(
        f"INSERT INTO {ks}.customer_view (customer_id, kind, source, table_name, entity_id, attributes, "
        "source_ts_us, applied_at) VALUES ('99', 'note', %s, 'public.notes', '99', "
        "{'note_id': 'i:99', 'customer_id': 'i:99', 'body': 's:ghost'}, 1, %s)",
        (ledger.name, datetime.now(UTC)),
    )
    found = _cli(stack, "--source", ledger.name, "--all", "--group", replicator.group_id, "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    problems = sorted(
        (f["problem"], f["table"], f["entity_id"], f["customer_id"]) for f in report["findings"]
    )
    assert problems == [
        ("differs", "public.customers", "1", "1"),
        ("extra", "public.notes", "99", "99"),
        ("missing", "public.customers", "2", None),
    ]
    assert {f["source"] for f in report["findings"]} == {ledger.name}

    repaired = _cli(stack, "--source", ledger.name, "--all", "--group", replicator.group_id, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired:" in repaired.stdout
    assert _verify(stack, store_session, ledger.name, replicator.group_id) == []


def test_a_change_in_flight_is_not_drift(
    ledger: SourceDatabase, stack: Settings, store_session: Session, replicator: ReplicatorProcess
) -> None:
    # Changes made just before verifying are applied while it runs; the re-check waits for them.
    ledger.execute(
        "INSERT INTO customers (customer_id, name) SELECT g, 'bulk ' || g FROM generate_series(100, 600) g"
    )
    ledger.execute("UPDATE customers SET name = name || '!' WHERE customer_id BETWEEN 100 AND 300")
    assert _verify(stack, store_session, ledger.name, replicator.group_id) == []
