"""Big rows flow up to the documented maximum record size (KafkaSettings.max_record_bytes, 8 MiB); a row
beyond it stops its connector loudly, naming the source, the table and the row's key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import pytest

from connectors.connect import ConnectClient
from scv.client import CustomerViewClient
from scv.config.settings import Settings
from tests.integration.conftest import (
    REPO,
    ReplicatorProcess,
    SourceDatabase,
    SourceFactory,
    attributes,
    view_of,
    wait_for,
)

SCHEMA = "CREATE TABLE public.documents (doc_id text PRIMARY KEY, customer_id text NOT NULL, body text);"
TABLES = "  public.documents: {kind: document, customer_key: customer_id}\n"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def documents(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    return source_database(SCHEMA, TABLES)


def test_a_row_of_3_mib_reaches_the_view(documents: SourceDatabase, reader: CustomerViewClient) -> None:
    customer = f"big-{uuid.uuid4().hex[:8]}"
    # Random hex does not compress: 3 MiB on every hop.
    body = secrets.token_hex(3 * MIB // 2)
    documents.execute("INSERT INTO documents VALUES ('d1', %s, %s)", (customer, body))
    found = wait_for(
        lambda: attributes(view_of(reader, customer), "document"), timeout_s=120, what="3 MiB row"
    )
    assert found["d1"]["body"] == body


def test_a_row_over_the_maximum_stops_its_connector_loudly_naming_table_and_key(
    source_database: SourceFactory, stack: Settings
) -> None:
    oversized = source_database(SCHEMA, TABLES)  # a source of its own: its connector will fail
    oversized.execute(
        "INSERT INTO documents VALUES ('too-big', 'c1', %s)", (secrets.token_hex(9 * MIB // 2),)
    )
    with ConnectClient(stack.connect.url) as connect:
        status = wait_for(
            lambda: (s := connect.status(f"scv-{oversized.name}")) and s.failed_trace and s,
            timeout_s=120,
            what="the connector task to fail on the oversized record",
        )
    assert "RecordTooLargeException" in (status.failed_trace or "")

    out = subprocess.run(
        [sys.executable, "-m", "scv", "sources", "status", oversized.name],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    message = " ".join(out.stderr.split())
    assert f"source {oversized.name} stopped on a change record over the maximum record size" in message
    assert f"{stack.kafka.max_record_bytes:,} bytes" in message
    assert "public.documents doc_id=too-big" in message
    assert "exclude_columns" in message
