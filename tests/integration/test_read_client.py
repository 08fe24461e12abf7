"""The read client on the real store: typed views, paged sections with unforgeable tokens, entities,
many customers at once, sync and asyncio alike, and answers marked stale when replicas are missing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from cassandra.cluster import Session

from scv.api.config import client_settings
from scv.client import (
    AsyncCustomerViewClient,
    ClientConfigurationError,
    ClientSettings,
    CustomerNotFound,
    CustomerViewClient,
    EntityNotFound,
    InvalidPageToken,
    StoreUnavailable,
)
from scv.config.settings import Settings
from store.migrate import discover_migrations
from store.session import connect
from tests.integration.conftest import REPO
from tests.integration.views import new_customer, write_view


@pytest.fixture(scope="module")
def settings(stack: Settings, store_session: Session) -> ClientSettings:
    return client_settings(stack)


@pytest.fixture(scope="module")
def client(settings: ClientSettings) -> Iterator[CustomerViewClient]:
    with CustomerViewClient(settings) as opened:
        yield opened


def test_whole_view_is_typed(client: CustomerViewClient, store_session: Session, stack: Settings) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"profile": 1, "email": 2})
    view = client.get_view(customer)
    assert sorted(view.sections) == ["email", "profile"]
    profile = view.sections["profile"][0]
    assert profile.attributes["balance"] == Decimal("12345678901234.5678")
    assert profile.attributes["seen_at"] == datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert profile.attributes["ref"] == UUID("12345678-1234-5678-1234-567812345678")
    assert profile.attributes["prefs"] == {"lang": "it", "n": Decimal("1.50")}
    assert profile.attributes["nick"] is None
    assert profile.source_ts.tzinfo is not None
    assert profile.applied_ts.tzinfo is not None
    assert view.age.total_seconds() < 600
    assert not view.possibly_stale


def test_unknown_customer_is_not_found(client: CustomerViewClient) -> None:
    with pytest.raises(CustomerNotFound):
        client.get_view(new_customer("nobody"))
    with pytest.raises(CustomerNotFound):
        client.get_section(new_customer("nobody"), "email")
    # Ids no partition can have (CQL refuses them as keys) are simply not found.
    for impossible in ("", "x" * 70_000):
        with pytest.raises(CustomerNotFound):
            client.get_view(impossible)
    assert client.get_many(["", "x" * 70_000]) == {"": None, "x" * 70_000: None}


def test_section_pages_cover_a_big_partition_exactly_once(
    client: CustomerViewClient, store_session: Session, stack: Settings
) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"interaction": 2500, "profile": 1})
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = client.get_section(customer, "interaction", page_token=token, page_size=1000)
        seen += [entity.id for entity in page.entities]
        pages += 1
        if page.next_page_token is None:
            break
        token = page.next_page_token
    assert pages == 3
    assert seen == [f"{n:05d}" for n in range(2500)]


def test_page_token_of_one_customer_is_refused_for_another(
    client: CustomerViewClient, store_session: Session, stack: Settings
) -> None:
    mine, theirs = new_customer(), new_customer()
    write_view(store_session, stack.store.keyspace, mine, {"interaction": 5})
    write_view(store_session, stack.store.keyspace, theirs, {"interaction": 5})
    token = client.get_section(mine, "interaction", page_size=2).next_page_token
    assert token is not None
    with pytest.raises(InvalidPageToken):
        client.get_section(theirs, "interaction", page_token=token)
    with pytest.raises(InvalidPageToken):
        client.get_section(mine, "consent", page_token=token)


def test_empty_section_of_a_known_customer_is_an_empty_page(
    client: CustomerViewClient, store_session: Session, stack: Settings
) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"profile": 1})
    page = client.get_section(customer, "consent")
    assert page.entities == ()
    assert page.next_page_token is None


def test_one_entity(client: CustomerViewClient, store_session: Session, stack: Settings) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"email": 3})
    entity = client.get_entity(customer, "email", "crm", "public.items", "00001")
    assert entity.attributes["name"] == "email 1"
    with pytest.raises(EntityNotFound):
        client.get_entity(customer, "email", "crm", "public.items", "99999")


def test_many_customers_at_once(client: CustomerViewClient, store_session: Session, stack: Settings) -> None:
    customers = [new_customer() for _ in range(40)]  # more than one window of settings.concurrency
    for customer in customers:
        write_view(store_session, stack.store.keyspace, customer, {"profile": 1})
    unknown = new_customer("nobody")
    views = client.get_many([*customers, unknown])
    assert list(views) == [*customers, unknown]
    assert views[unknown] is None
    assert all(views[c] is not None and views[c].sections["profile"][0].id == "00000" for c in customers)


def test_async_twin_reads_the_same(settings: ClientSettings, store_session: Session, stack: Settings) -> None:
    customers = [new_customer() for _ in range(3)]
    for customer in customers:
        write_view(store_session, stack.store.keyspace, customer, {"interaction": 30, "profile": 1})

    async def read() -> None:
        async with AsyncCustomerViewClient(settings) as aclient:
            with CustomerViewClient(settings) as sync:
                assert (await aclient.get_view(customers[0])).to_json() == sync.get_view(
                    customers[0]
                ).to_json()
            many = await aclient.get_many([*customers, "nobody-async"])
            assert many["nobody-async"] is None
            assert all(many[c] is not None for c in customers)
            first = await aclient.get_section(customers[1], "interaction", page_size=20)
            assert first.next_page_token is not None
            rest = await aclient.get_section(customers[1], "interaction", page_token=first.next_page_token)
            assert [e.id for e in first.entities + rest.entities] == [f"{n:05d}" for n in range(30)]
            with pytest.raises(CustomerNotFound):
                await aclient.get_view("nobody-async")
            entity = await aclient.get_entity(customers[2], "profile", "crm", "public.items", "00000")
            assert entity.kind == "profile"

    asyncio.run(read())


@dataclass(frozen=True)
class ThreeReplicas:
    keyspace: str
    session: Session  # writes at ONE: the only consistency this keyspace can meet


@pytest.fixture(scope="module")
def three_replicas(stack: Settings, store_session: Session) -> Iterator[ThreeReplicas]:
    """A keyspace asking for 3 replicas on the single local node: LOCAL_QUORUM (2) cannot be met,
    ONE can. Real Unavailable errors from the store, without stopping the shared one."""
    keyspace = f"{stack.store.keyspace}_rf3"
    store_session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{stack.store.local_dc}': 3}}"
    )
    for migration in discover_migrations():
        for statement in migration.statements(keyspace):
            store_session.execute(statement, timeout=60)
    cluster, session = connect(stack.store.model_copy(update={"consistency": "ONE"}))
    yield ThreeReplicas(keyspace, session)
    cluster.shutdown()
    store_session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


def test_unmet_consistency_fails_without_a_fallback(
    settings: ClientSettings, three_replicas: ThreeReplicas
) -> None:
    customer = new_customer()
    write_view(three_replicas.session, three_replicas.keyspace, customer, {"profile": 1})
    with (
        CustomerViewClient(replace(settings, keyspace=three_replicas.keyspace)) as strict,
        pytest.raises(StoreUnavailable, match="LOCAL_QUORUM"),
    ):
        strict.get_view(customer)


def test_unmet_consistency_falls_back_and_marks_the_answer_stale(
    settings: ClientSettings, three_replicas: ThreeReplicas
) -> None:
    customer = new_customer()
    write_view(three_replicas.session, three_replicas.keyspace, customer, {"profile": 1, "interaction": 3})
    lenient = replace(settings, keyspace=three_replicas.keyspace, fallback_consistency="LOCAL_ONE")
    with CustomerViewClient(lenient) as client:
        view = client.get_view(customer)
        assert view.possibly_stale
        assert view.sections["profile"][0].id == "00000"
        assert client.get_section(customer, "interaction").possibly_stale
        assert client.get_many([customer])[customer].possibly_stale  # type: ignore[union-attr]

    async def read() -> bool:
        async with AsyncCustomerViewClient(lenient) as aclient:
            return (await aclient.get_view(customer)).possibly_stale

    assert asyncio.run(read())


def test_missing_keyspace_names_the_fix(settings: ClientSettings) -> None:
    with pytest.raises(ClientConfigurationError, match="scv store migrate"):
        CustomerViewClient(replace(settings, keyspace="scv_no_such_keyspace"))


def test_unreachable_store_is_unavailable(settings: ClientSettings) -> None:
    with pytest.raises(StoreUnavailable):
        CustomerViewClient(replace(settings, port=1, connect_timeout_s=1))


# -- the CLI (`scv view get`) -----------------------------------------------------------------------


def scv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scv", *args],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json_is_the_read_contract(
    client: CustomerViewClient, store_session: Session, stack: Settings
) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"profile": 1, "email": 2})
    out = scv("view", "get", customer, "--json")
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == client.get_view(customer).to_json()
    assert printed["sections"]["profile"][0]["attributes"]["balance"] == "12345678901234.5678"
    assert printed["sections"]["profile"][0]["attributes"]["prefs"] == {"lang": "it", "n": 1.5}


def test_cli_section_and_readable_rendering(store_session: Session, stack: Settings) -> None:
    customer = new_customer()
    write_view(store_session, stack.store.keyspace, customer, {"profile": 1, "email": 2})
    section = json.loads(scv("view", "get", customer, "--section", "email", "--json").stdout)
    assert list(section["sections"]) == ["email"]
    assert [e["id"] for e in section["sections"]["email"]] == ["00000", "00001"]
    readable = scv("view", "get", customer)
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout.startswith(f"customer {customer}: 3 entities in 2 sections, last applied ")
    assert "email (2)" in readable.stdout
    assert "balance  12345678901234.5678" in readable.stdout


def test_cli_unknown_customer_exits_2_with_the_next_step() -> None:
    out = scv("view", "get", new_customer("nobody"))
    assert out.returncode == 2
    assert "scv sources list" in out.stderr


def test_importing_the_client_loads_none_of_the_services_dependencies() -> None:
    probe = (
        "import sys, scv.client, scv.client.cli; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    service = {
        "confluent_kafka", "psycopg", "typer", "rich", "fastavro", "pydantic", "pydantic_settings",
        "structlog", "prometheus_client", "httpx", "fastapi", "store", "consumer", "connectors",
    }  # fmt: skip
    assert "cassandra" in loaded
    assert loaded & service == set()
