"""The replicator on the real stack: PostgreSQL -> Debezium -> Kafka (Avro) -> replicator -> CQL store.

Each test changes rows in a source database onboarded through the real connector and waits until the
view shows the expected state; nothing between PostgreSQL and the store is faked.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

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

SCHEMA = """
CREATE TYPE tier AS ENUM ('bronze', 'silver', 'gold');
CREATE TABLE public.customers (
    customer_id bigint PRIMARY KEY,
    name text NOT NULL,
    tier tier,
    balance numeric(18, 4),
    ratio numeric,
    born date,
    seen_at timestamptz,
    local_at timestamp,
    ref uuid,
    prefs jsonb,
    tags text[],
    active boolean,
    notes text,
    -- A jsonb default makes Apicurio 3.0.9's ccompat API fail to render the schema (issue 5713).
    settings jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE public.accounts (account_id bigint PRIMARY KEY, customer_id bigint NOT NULL, kind text);
CREATE TABLE public.cards (card_id bigint PRIMARY KEY, account_id bigint NOT NULL, last4 text);
CREATE TABLE public.card_tokens (token_id bigint PRIMARY KEY, card_id bigint NOT NULL, wallet text);
CREATE TABLE public.consents (
    customer_id bigint, purpose text, granted boolean, PRIMARY KEY (customer_id, purpose)
);
CREATE TABLE public.orders (order_id uuid PRIMARY KEY, customer_id bigint, total numeric(12, 2));
"""

TABLES = """\
  public.customers: {kind: profile, customer_key: customer_id}
  public.accounts: {kind: account, customer_key: customer_id}
  public.cards: {kind: card, customer_key: {via: public.accounts, column: account_id}}
  public.card_tokens: {kind: card_token, customer_key: {via: public.cards, column: card_id}}
  public.consents: {kind: consent, customer_key: customer_id}
  public.orders: {kind: order, customer_key: customer_id, null_customer_key: skip}
"""

# Rows present before onboarding: they reach the view through the initial snapshot (op=r).
SNAPSHOT_CUSTOMER = 1_000_001


@pytest.fixture(scope="module")
def bank(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    seed = (
        f"{SCHEMA}\nINSERT INTO public.customers (customer_id, name, tier, balance) "
        f"VALUES ({SNAPSHOT_CUSTOMER}, 'Snap Shot', 'gold', 10.5000);"
    )
    return source_database(seed, TABLES)


def new_customer_id() -> int:
    return random.randint(10**9, 10**12)


def profile(reader: CustomerViewClient, customer_id: int) -> dict[str, Any] | None:
    return attributes(view_of(reader, str(customer_id)), "profile").get(str(customer_id))


def test_snapshot_rows_reach_the_view(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    found = wait_for(lambda: profile(reader, SNAPSHOT_CUSTOMER), what="snapshot row in the view")
    assert found["name"] == "Snap Shot"
    assert found["balance"] == Decimal("10.5000")


def test_create_update_delete_stream_into_the_view(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    bank.execute("INSERT INTO customers (customer_id, name) VALUES (%s, 'Ada')", (cid,))
    wait_for(lambda: (p := profile(reader, cid)) and p["name"] == "Ada", what="insert applied")
    bank.execute("UPDATE customers SET name = 'Ada L.' WHERE customer_id = %s", (cid,))
    wait_for(lambda: (p := profile(reader, cid)) and p["name"] == "Ada L.", what="update applied")
    # Default replica identity: the delete's before-image holds only the key; the index finds the row.
    identity = bank.fetch("SELECT relreplident FROM pg_class WHERE relname = 'customers'")
    assert identity == [("d",)]
    bank.execute("DELETE FROM customers WHERE customer_id = %s", (cid,))
    wait_for(lambda: profile(reader, cid) is None, what="delete applied")


def test_type_fidelity_through_the_read_contract(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    bank.execute(
        """INSERT INTO customers (customer_id, name, tier, balance, ratio, born, seen_at, local_at, ref,
                                  prefs, tags, active, notes)
           VALUES (%s, 'Typed', 'silver', 12345678901234.5678, 0.000000000000000000123, '1990-02-28',
                   '2024-03-01 10:00:00.123456+02', '2024-03-01 10:00:00.654321',
                   '12345678-1234-5678-1234-567812345678', '{"lang": "it", "n": 1.50}',
                   ARRAY['a', 'b c'], true, NULL)""",
        (cid,),
    )
    found = wait_for(lambda: profile(reader, cid), what="typed row")
    assert found["balance"] == Decimal("12345678901234.5678")
    assert str(found["balance"]) == "12345678901234.5678"
    assert found["ratio"] == Decimal("1.23E-19")
    assert found["born"] == date(1990, 2, 28)
    assert found["seen_at"] == datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert found["local_at"] == datetime(2024, 3, 1, 10, 0, 0, 654321)
    assert found["ref"] == UUID("12345678-1234-5678-1234-567812345678")
    assert found["prefs"] == {"lang": "it", "n": Decimal("1.50")}
    assert found["tags"] == ["a", "b c"]
    assert found["tier"] == "silver"
    assert found["active"] is True
    assert "notes" in found
    assert found["notes"] is None

    # The CLI's JSON contract renders the same row.
    out = subprocess.run(
        [sys.executable, "-m", "scv", "view", "get", str(cid), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    contract = json.loads(out.stdout)
    assert contract["customer_id"] == str(cid)
    entity = contract["sections"]["profile"][0]
    assert entity["id"] == str(cid)
    assert entity["source"] == bank.name
    assert entity["table"] == "public.customers"
    attrs = entity["attributes"]
    assert attrs["balance"] == "12345678901234.5678"
    assert attrs["seen_at"] == "2024-03-01T08:00:00.123456+00:00"
    assert attrs["born"] == "1990-02-28"
    assert attrs["ref"] == "12345678-1234-5678-1234-567812345678"
    assert attrs["prefs"] == {"lang": "it", "n": 1.5}
    assert attrs["tags"] == ["a", "b c"]
    assert attrs["notes"] is None
    assert datetime.fromisoformat(entity["source_ts"]).tzinfo is not None
    assert datetime.fromisoformat(entity["applied_ts"]) >= datetime.fromisoformat(entity["source_ts"])


def test_unknown_customer_exits_non_zero_with_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scv", "view", "get", "no-such-customer", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert "no-such-customer" in out.stderr
    assert out.stdout == ""


def test_unchanged_toast_value_is_never_overwritten(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    # Random text does not compress, so PostgreSQL moves it out of line (TOAST); an update that
    # leaves it unchanged then sends Debezium's unavailable-value placeholder instead of the value.
    notes = "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789 ", k=20_000))
    bank.execute("INSERT INTO customers (customer_id, name, notes) VALUES (%s, 'Toast', %s)", (cid, notes))
    wait_for(lambda: (p := profile(reader, cid)) and p.get("notes") == notes, what="toasted insert")
    bank.execute("UPDATE customers SET name = 'Toast 2' WHERE customer_id = %s", (cid,))
    found = wait_for(lambda: (p := profile(reader, cid)) and p["name"] == "Toast 2" and p, what="update")
    assert found["notes"] == notes


def test_primary_key_update_moves_the_entity_id(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    old_id, new_id = new_customer_id(), new_customer_id()
    bank.execute("INSERT INTO accounts VALUES (%s, %s, 'current')", (old_id, cid))
    wait_for(lambda: str(old_id) in attributes(view_of(reader, str(cid)), "account"), what="account")
    bank.execute("UPDATE accounts SET account_id = %s WHERE account_id = %s", (new_id, old_id))
    accounts = wait_for(
        lambda: (a := attributes(view_of(reader, str(cid)), "account")) and str(old_id) not in a and a,
        what="key change applied",
    )
    assert set(accounts) == {str(new_id)}


def test_moving_an_account_moves_its_cards(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    first, second = new_customer_id(), new_customer_id()
    account = new_customer_id()
    bank.execute("INSERT INTO accounts VALUES (%s, %s, 'current')", (account, first))
    bank.execute(
        "INSERT INTO cards VALUES (%s, %s, '1234'), (%s, %s, '5678')",
        (account * 10, account, account * 10 + 1, account),
    )
    cards = wait_for(
        lambda: len(c := attributes(view_of(reader, str(first)), "card")) == 2 and c, what="cards placed"
    )
    assert {a["last4"] for a in cards.values()} == {"1234", "5678"}

    bank.execute("UPDATE accounts SET customer_id = %s WHERE account_id = %s", (second, account))
    wait_for(lambda: len(attributes(view_of(reader, str(second)), "card")) == 2, what="cards moved")
    old = view_of(reader, str(first))
    assert attributes(old, "card") == {}
    assert attributes(old, "account") == {}
    assert str(account) in attributes(view_of(reader, str(second)), "account")

    # A card change after the move follows the account's new owner.
    bank.execute("UPDATE cards SET last4 = '0000' WHERE card_id = %s", (account * 10,))
    wait_for(
        lambda: (
            attributes(view_of(reader, str(second)), "card").get(str(account * 10), {}).get("last4") == "0000"
        ),
        what="card update at new owner",
    )


def test_card_arriving_before_its_account_is_placed_when_account_arrives(
    bank: SourceDatabase, reader: CustomerViewClient
) -> None:
    cid, account = new_customer_id(), new_customer_id()
    # Same transaction order as a real SOR could produce across topics: card first, account later.
    bank.execute("INSERT INTO cards VALUES (%s, %s, '4242')", (account * 10, account))
    bank.execute("INSERT INTO accounts VALUES (%s, %s, 'deposit')", (account, cid))
    cards = wait_for(lambda: attributes(view_of(reader, str(cid)), "card"), what="orphan card adopted")
    assert cards[str(account * 10)]["last4"] == "4242"

    # One transaction: both changes share a commit timestamp, so if the card is applied first (its
    # topic is read independently) the adoption ties with the card's own orphan placement. The
    # adopted card must still follow its account's next move.
    later, card = new_customer_id(), str(account * 10 + 1)
    with psycopg.connect(bank.dsn) as conn, conn.transaction():
        conn.execute("INSERT INTO cards VALUES (%s, %s, '5151')", (account * 10 + 1, account + 1))
        conn.execute("INSERT INTO accounts VALUES (%s, %s, 'deposit')", (account + 1, cid))
    wait_for(lambda: card in attributes(view_of(reader, str(cid)), "card"), what="adopted")
    bank.execute("UPDATE accounts SET customer_id = %s WHERE account_id = %s", (later, account + 1))
    wait_for(lambda: card in attributes(view_of(reader, str(later)), "card"), what="followed")
    assert card not in attributes(view_of(reader, str(cid)), "card")


def test_many_orphans_are_adopted_at_once_and_grandchildren_follow_the_next_move(
    bank: SourceDatabase, reader: CustomerViewClient
) -> None:
    # The shape of an initial snapshot whose child topics are consumed before their parents': tokens
    # (via cards) and cards (via accounts) wait in orphan partitions, then many accounts arrive in
    # one transaction and adopt them all — and a later move of every account takes both levels along.
    first, second = str(new_customer_id()), str(new_customer_id())
    accounts = [new_customer_id() for _ in range(40)]
    with psycopg.connect(bank.dsn) as conn, conn.transaction():
        for account in accounts:
            conn.execute("INSERT INTO card_tokens VALUES (%s, %s, 'pay')", (account * 100, account * 10))
    with psycopg.connect(bank.dsn) as conn, conn.transaction():
        for account in accounts:
            conn.execute("INSERT INTO cards VALUES (%s, %s, '1111')", (account * 10, account))
    bank.execute(
        "INSERT INTO accounts SELECT a, %s, 'current' FROM unnest(%s::bigint[]) AS a", (int(first), accounts)
    )

    def placed(customer: str) -> bool:
        view = view_of(reader, customer)
        return all(len(attributes(view, kind)) == 40 for kind in ("account", "card", "card_token"))

    wait_for(lambda: placed(first), what="40 accounts with their adopted cards and tokens")
    bank.execute("UPDATE accounts SET customer_id = %s WHERE account_id = ANY(%s)", (int(second), accounts))
    wait_for(lambda: placed(second), what="every account, card and token at the new owner")
    old = view_of(reader, first)
    assert {kind: attributes(old, kind) for kind in ("account", "card", "card_token")} == {
        "account": {},
        "card": {},
        "card_token": {},
    }


def test_composite_primary_key_entities(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    bank.execute("INSERT INTO consents VALUES (%s, 'marketing', true), (%s, 'profiling', false)", (cid, cid))
    consents = wait_for(
        lambda: len(c := attributes(view_of(reader, str(cid)), "consent")) == 2 and c, what="consents"
    )
    assert consents[f"{cid}/marketing"]["granted"] is True
    bank.execute("DELETE FROM consents WHERE customer_id = %s AND purpose = 'marketing'", (cid,))
    wait_for(
        lambda: set(attributes(view_of(reader, str(cid)), "consent")) == {f"{cid}/profiling"},
        what="composite delete",
    )


def test_schema_evolution_mid_stream(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    bank.execute("INSERT INTO accounts VALUES (%s, %s, 'current')", (cid, cid))
    wait_for(lambda: attributes(view_of(reader, str(cid)), "account"), what="account before DDL")
    bank.execute("ALTER TABLE accounts ADD COLUMN nickname text")
    bank.execute("UPDATE accounts SET nickname = 'rainy day' WHERE account_id = %s", (cid,))
    wait_for(
        lambda: (
            attributes(view_of(reader, str(cid)), "account").get(str(cid), {}).get("nickname") == "rainy day"
        ),
        what="added column applied",
    )
    bank.execute("ALTER TABLE accounts DROP COLUMN nickname")
    bank.execute("UPDATE accounts SET kind = 'deposit' WHERE account_id = %s", (cid,))
    found = wait_for(
        lambda: (
            (a := attributes(view_of(reader, str(cid)), "account").get(str(cid)))
            and a["kind"] == "deposit"
            and a
        ),
        what="update after drop column",
    )
    assert "nickname" not in found


def test_truncate_removes_the_tables_entities(bank: SourceDatabase, reader: CustomerViewClient) -> None:
    cid = new_customer_id()
    order_id = UUID(int=random.getrandbits(128))
    bank.execute("INSERT INTO orders VALUES (%s, %s, 19.99)", (order_id, cid))
    wait_for(lambda: attributes(view_of(reader, str(cid)), "order"), what="order")
    bank.execute("TRUNCATE orders")
    wait_for(lambda: not attributes(view_of(reader, str(cid)), "order"), what="truncate applied")
    # A row inserted after the truncate is newer than it and stays.
    bank.execute("INSERT INTO orders VALUES (%s, %s, 5.00)", (order_id, cid))
    orders = wait_for(lambda: attributes(view_of(reader, str(cid)), "order"), what="insert after truncate")
    assert orders[str(order_id)]["total"] == Decimal("5.00")


def test_metrics_endpoint_exports_the_documented_series(
    bank: SourceDatabase, replicator: ReplicatorProcess, stack: Settings
) -> None:
    import httpx

    text = wait_for(
        lambda: (
            (body := httpx.get(f"http://127.0.0.1:{replicator.metrics_port}/metrics").text)
            and "scv_events_applied_total{" in body
            and body
        ),
        what="metrics",
    )
    for series in (
        "scv_events_consumed_total",
        "scv_events_applied_total",
        "scv_store_write_seconds_bucket",
        "scv_freshness_seconds_bucket",
        "scv_capture_seconds_bucket",
        "scv_delivery_seconds_bucket",
        'scv_batch_phase_seconds_bucket{le="0.001",phase="decode"}',
        'scv_batch_phase_seconds_bucket{le="0.001",phase="write"}',
        'scv_batch_phase_seconds_bucket{le="0.001",phase="commit"}',
        "scv_gc_pause_seconds_bucket",
        "scv_index_cache_entries",
        "scv_batch_events_bucket",
        "scv_consumer_lag_offsets",
    ):
        assert series in text, series
    assert f'source="{bank.name}"' in text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def test_freshness_splits_into_capture_and_delivery_at_the_kafka_timestamp(
    bank: SourceDatabase, reader: CustomerViewClient, replicator: ReplicatorProcess
) -> None:
    import httpx

    cid = new_customer_id()
    bank.execute("INSERT INTO customers (customer_id, name) VALUES (%s, 'split')", (cid,))
    wait_for(lambda: profile(reader, cid), what="streamed change applied")
    text = httpx.get(f"http://127.0.0.1:{replicator.metrics_port}/metrics").text
    label = f'{{source="{bank.name}"}}'
    fresh, capture, delivery = (
        _sample(text, f"scv_{kind}_seconds_sum{label}") for kind in ("freshness", "capture", "delivery")
    )
    kinds = ("freshness", "capture", "delivery")
    counts = {_sample(text, f"scv_{kind}_seconds_count{label}") for kind in kinds}
    # Every streamed change is observed in all three; per change, capture + delivery = freshness.
    assert len(counts) == 1
    assert counts.pop() >= 1
    assert capture > 0
    assert delivery > 0
    assert abs(fresh - (capture + delivery)) <= 0.001 * fresh + 0.01


def test_schema_the_ccompat_api_cannot_render_is_fetched_natively(
    bank: SourceDatabase, reader: CustomerViewClient, stack: Settings
) -> None:
    import httpx
    from confluent_kafka import Consumer

    cid = new_customer_id()
    bank.execute("INSERT INTO customers (customer_id, name, settings) VALUES (%s, 'J', '{\"a\": 1}')", (cid,))
    found = wait_for(lambda: profile(reader, cid), what="row whose schema only the native API renders")
    assert found["settings"] == {"a": 1}

    # The precondition, so this test fails loudly once the registry is fixed and the fallback can go.
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka.bootstrap_servers,
            "group.id": f"probe-{cid}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{bank.name}.public.customers"])
    try:
        message = wait_for(
            lambda: (m := consumer.poll(1.0)) and not m.error() and m.value() and m, what="a customers record"
        )
    finally:
        consumer.close()
    schema_id = int.from_bytes(message.value()[1:5], "big")
    ccompat = httpx.get(f"{stack.registry.url}/schemas/ids/{schema_id}")
    assert ccompat.status_code == 400
    assert "discover artifact type" in ccompat.text


def _cache_hits(replicator: ReplicatorProcess) -> float:
    import httpx

    body = httpx.get(f"http://127.0.0.1:{replicator.metrics_port}/metrics").text
    for line in body.splitlines():
        if line.startswith('scv_index_cache_lookups_total{result="hit"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_updates_of_a_known_entity_come_from_the_cache_and_a_move_still_leaves_the_old_customer(
    bank: SourceDatabase, replicator: ReplicatorProcess, reader: CustomerViewClient
) -> None:
    first, second, third = new_customer_id(), new_customer_id(), new_customer_id()
    account = new_customer_id()
    bank.execute("INSERT INTO accounts VALUES (%s, %s, 'current')", (account, first))
    wait_for(lambda: str(account) in attributes(view_of(reader, str(first)), "account"), what="account")
    hits = _cache_hits(replicator)

    def kind_in_view() -> object:
        return attributes(view_of(reader, str(first)), "account").get(str(account), {}).get("kind")

    for kind in ("savings", "loan"):
        bank.execute("UPDATE accounts SET kind = %s WHERE account_id = %s", (kind, account))
        wait_for(lambda k=kind: kind_in_view() == k, what=f"update to {kind}")
    assert _cache_hits(replicator) >= hits + 2, "updates of an entity the replicator created read the index"

    # The cached owner is what the move must delete from: twice, so the second move starts from an
    # entry the cache learned from the first.
    for old, new in ((first, second), (second, third)):
        bank.execute("UPDATE accounts SET customer_id = %s WHERE account_id = %s", (new, account))
        wait_for(lambda n=new: str(account) in attributes(view_of(reader, str(n)), "account"), what="moved")
        assert attributes(view_of(reader, str(old)), "account") == {}
