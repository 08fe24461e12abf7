"""One customer across systems, on the real stack: a contact center keyed by fiscal code resolved through
the CRM, key normalisation across sources, CRM merges and their undo, history on delete.

Three sources onboarded through the real connector: a CRM (customers with a fiscal-code lookup key and
a merge column), a contact center that knows customers only by fiscal code, and a core system whose
account holder ids are spelled '00042' or '42.00'.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

import pytest
from cassandra.cluster import Session

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from scv.contracts.cells import decode_value
from tests.integration.conftest import ReplicatorProcess, SourceDatabase, SourceFactory, wait_for

CRM_SCHEMA = """
CREATE TABLE public.customers (
    customer_id bigint PRIMARY KEY,
    fiscal_code text NOT NULL,
    merged_into bigint,
    full_name text NOT NULL,
    channel text
);
CREATE TABLE public.emails (
    email_id bigint PRIMARY KEY, customer_id bigint NOT NULL, email text NOT NULL,
    is_primary boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now()
);
"""
CARE_SCHEMA = """
CREATE TABLE public.interactions (
    interaction_id bigint PRIMARY KEY,
    fiscal_code text NOT NULL,
    subject text NOT NULL
);
CREATE TABLE public.contacts (
    contact_id bigint PRIMARY KEY, fiscal_code text NOT NULL, email text, caller_name text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""
CORE_SCHEMA = "CREATE TABLE public.accounts (account_id bigint PRIMARY KEY, holder text NOT NULL);"

Row = dict[str, Any]
Partition = dict[tuple[str, str], Row]  # (table, entity id) -> row


@pytest.fixture(scope="module")
def crm(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    tables = """\
  public.customers:
    kind: profile
    customer_key: {column: customer_id, normalize: [number]}
    keys: {fiscal_code: [trim, upper]}
    merge_into: merged_into
    profile: {name: full_name, channel: channel}
  public.emails:
    kind: email
    customer_key: customer_id
    contact: {value: email, primary: is_primary, updated: updated_at, normalize: [trim, casefold]}
"""
    return source_database(CRM_SCHEMA, tables, "priority: 10\n")


@pytest.fixture(scope="module")
def care(source_database: SourceFactory, crm: SourceDatabase) -> SourceDatabase:
    tables = f"""\
  public.interactions:
    kind: interaction
    customer_key: {{via: {crm.name}.public.customers, column: fiscal_code, match: fiscal_code}}
  public.contacts:
    kind: email
    customer_key: {{via: {crm.name}.public.customers, column: fiscal_code, match: fiscal_code}}
    contact: {{value: email, updated: updated_at, normalize: [trim, casefold]}}
    profile: {{name: caller_name}}
"""
    return source_database(CARE_SCHEMA, tables, "on_delete: keep\n")


@pytest.fixture(scope="module")
def core(source_database: SourceFactory, replicator: ReplicatorProcess) -> SourceDatabase:
    tables = """\
  public.accounts:
    kind: account
    customer_key: {column: holder, normalize: [number]}
"""
    return source_database(CORE_SCHEMA, tables)


@pytest.fixture(scope="module")
def partition(stack: Settings, store_session: Session) -> Callable[[str], Partition]:
    select = store_session.prepare(
        "SELECT table_name, entity_id, attributes, home_id, ended_at "
        f"FROM {stack.store.keyspace}.customer_view WHERE customer_id = ?"
    )

    def read(customer: str) -> Partition:
        return {
            (row.table_name, row.entity_id): {
                **{k: decode_value(v) for k, v in (row.attributes or {}).items()},
                "_home": row.home_id,
                "_ended": row.ended_at,
            }
            for row in store_session.execute(select, (customer,))
        }

    return read


def fiscal_code() -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=16))


def new_id() -> int:
    return random.randint(10**9, 10**12)


def test_interaction_before_its_crm_customer_is_parked_then_placed(
    crm: SourceDatabase,
    care: SourceDatabase,
    partition: Callable[[str], Partition],
    store_session: Session,
    stack: Settings,
) -> None:
    code, cid, iid = fiscal_code(), new_id(), new_id()
    care.execute(
        "INSERT INTO interactions VALUES (%s, %s, 'called before being a customer')",
        (iid, f" {code.lower()}"),
    )
    parked = f"~parked/{crm.name}/public.customers/fiscal_code/{code}"
    wait_for(lambda: ("public.interactions", str(iid)) in partition(parked), what="interaction parked")
    waiting = store_session.execute(
        f"SELECT entity_id FROM {stack.store.keyspace}.parked_entities WHERE source = %s AND table_name = %s",
        (care.name, "public.interactions"),
    )
    assert str(iid) in {row.entity_id for row in waiting}
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'Ada Lovelace', 'web')", (cid, code))
    found = wait_for(
        lambda: partition(str(cid)).get(("public.interactions", str(iid))), what="interaction placed"
    )
    assert found["subject"] == "called before being a customer"
    assert partition(parked) == {}


def test_interaction_after_its_crm_customer_lands_with_it(
    crm: SourceDatabase, care: SourceDatabase, partition: Callable[[str], Partition]
) -> None:
    code, cid, iid = fiscal_code(), new_id(), new_id()
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'Grace Hopper', 'branch')", (cid, code))
    wait_for(lambda: partition(str(cid)).get(("public.customers", str(cid))), what="customer applied")
    care.execute("INSERT INTO interactions VALUES (%s, %s, 'hello')", (iid, code))
    wait_for(lambda: partition(str(cid)).get(("public.interactions", str(iid))), what="interaction placed")


def test_fiscal_code_correction_moves_the_interactions(
    crm: SourceDatabase, care: SourceDatabase, partition: Callable[[str], Partition]
) -> None:
    wrong, right, cid, iid = fiscal_code(), fiscal_code(), new_id(), new_id()
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'Typo', NULL)", (cid, wrong))
    care.execute("INSERT INTO interactions VALUES (%s, %s, 'keyed by the right code')", (iid, right))
    parked = f"~parked/{crm.name}/public.customers/fiscal_code/{right}"
    wait_for(lambda: ("public.interactions", str(iid)) in partition(parked), what="interaction parked")
    crm.execute("UPDATE customers SET fiscal_code = %s WHERE customer_id = %s", (right, cid))
    wait_for(lambda: ("public.interactions", str(iid)) in partition(str(cid)), what="interaction moved in")
    assert partition(parked) == {}


def test_customer_ids_spelled_differently_across_sources_share_a_partition(
    crm: SourceDatabase, core: SourceDatabase, partition: Callable[[str], Partition]
) -> None:
    cid = new_id()
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'Spelled', NULL)", (cid, fiscal_code()))
    core.execute("INSERT INTO accounts VALUES (%s, %s), (%s, %s)", (1, f"000{cid}", 2, f"{cid}.00"))
    wait_for(
        lambda: (
            {("public.accounts", "1"), ("public.accounts", "2"), ("public.customers", str(cid))}
            <= partition(str(cid)).keys()
        ),
        what="both spellings in the customer's partition",
    )


def test_merge_moves_every_entity_to_the_survivor_and_undo_moves_them_back(
    crm: SourceDatabase,
    care: SourceDatabase,
    core: SourceDatabase,
    partition: Callable[[str], Partition],
    store_session: Session,
    stack: Settings,
    reader: CustomerViewClient,
) -> None:
    absorbed, survivor, code = new_id(), new_id(), fiscal_code()
    account, iid = new_id(), new_id()
    crm.execute(
        "INSERT INTO customers VALUES (%s, %s, NULL, 'Duplicate', NULL), (%s, %s, NULL, 'Original', NULL)",
        (absorbed, code, survivor, fiscal_code()),
    )
    core.execute("INSERT INTO accounts VALUES (%s, %s)", (account, str(absorbed)))
    care.execute("INSERT INTO interactions VALUES (%s, %s, 'of the duplicate')", (iid, code))
    expected = {
        ("public.customers", str(absorbed)),
        ("public.accounts", str(account)),
        ("public.interactions", str(iid)),
    }
    wait_for(lambda: expected <= partition(str(absorbed)).keys(), what="the duplicate's view")

    crm.execute("UPDATE customers SET merged_into = %s WHERE customer_id = %s", (survivor, absorbed))
    wait_for(lambda: expected <= partition(str(survivor)).keys(), what="entities moved to the survivor")
    wait_for(lambda: partition(str(absorbed)) == {}, what="the absorbed partition emptied")
    assert partition(str(survivor))[("public.accounts", str(account))]["_home"] == str(absorbed)
    redirect = store_session.execute(
        f"SELECT survivor_id FROM {stack.store.keyspace}.customer_redirects WHERE customer_id = %s",
        (str(absorbed),),
    ).one()
    assert redirect is not None
    assert redirect.survivor_id == str(survivor)

    # A read of the absorbed id answers with the survivor's view, and says so.
    merged = reader.get_view(str(absorbed))
    assert merged.customer_id == str(survivor)
    assert merged.redirected_from == str(absorbed)
    assert merged.to_json()["redirected_from"] == str(absorbed)

    crm.execute("UPDATE customers SET merged_into = NULL WHERE customer_id = %s", (absorbed,))
    wait_for(lambda: expected <= partition(str(absorbed)).keys(), what="entities moved back home")
    assert ("public.customers", str(survivor)) in partition(str(survivor))
    assert not expected & partition(str(survivor)).keys()


def test_keep_marks_deleted_interactions_ended_and_remove_deletes_accounts(
    crm: SourceDatabase,
    care: SourceDatabase,
    core: SourceDatabase,
    partition: Callable[[str], Partition],
    reader: CustomerViewClient,
) -> None:
    cid, code, iid, account = new_id(), fiscal_code(), new_id(), new_id()
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'History', NULL)", (cid, code))
    care.execute("INSERT INTO interactions VALUES (%s, %s, 'to be purged at the source')", (iid, code))
    core.execute("INSERT INTO accounts VALUES (%s, %s)", (account, str(cid)))
    wait_for(
        lambda: (
            {("public.interactions", str(iid)), ("public.accounts", str(account))}
            <= partition(str(cid)).keys()
        ),
        what="interaction and account applied",
    )
    care.execute("DELETE FROM interactions WHERE interaction_id = %s", (iid,))
    core.execute("DELETE FROM accounts WHERE account_id = %s", (account,))
    ended = wait_for(
        lambda: (row := partition(str(cid)).get(("public.interactions", str(iid)))) and row["_ended"] and row,
        what="interaction marked ended",
    )
    assert ended["subject"] == "to be purged at the source"
    wait_for(lambda: ("public.accounts", str(account)) not in partition(str(cid)), what="account removed")
    history = reader.get_view(str(cid))
    assert history.sections["interaction"][0].ended_at is not None
    assert "interaction" not in reader.get_view(str(cid), include_ended=False).sections


def test_one_email_held_by_two_sources_appears_once_and_the_profile_follows_precedence(
    crm: SourceDatabase,
    care: SourceDatabase,
    partition: Callable[[str], Partition],
    reader: CustomerViewClient,
) -> None:
    cid, code = new_id(), fiscal_code()
    crm.execute("INSERT INTO customers VALUES (%s, %s, NULL, 'Ada Lovelace', 'web')", (cid, code))
    crm.execute(
        "INSERT INTO emails (email_id, customer_id, email, is_primary) VALUES "
        "(%s, %s, 'Ada@Example.com', true), (%s, %s, 'old@example.com', false)",
        (new_id(), cid, new_id(), cid),
    )
    care.execute(
        "INSERT INTO contacts VALUES "
        "(%s, %s, ' ada@example.com', 'A. Lovelace', now() + interval '1 minute')",
        (new_id(), code),
    )
    wait_for(lambda: len(partition(str(cid))) == 4, what="customer, two crm e-mails and the care contact")
    view = reader.get_view(str(cid))
    emails = view.contacts("email")
    assert [c.normalized for c in emails] == ["ada@example.com", "old@example.com"]
    assert {h.source for h in emails[0].held_by} == {crm.name, care.name}
    assert emails[0].primary is True
    profile = view.profile
    assert profile["name"].value == "Ada Lovelace"  # crm's priority 10 over care's newer value
    assert [(a.value, a.holder.source) for a in profile["name"].alternatives] == [("A. Lovelace", care.name)]
    rendered = view.to_json()
    assert rendered["contacts"]["email"][0]["held_by"][0]["source"] in {crm.name, care.name}
    assert rendered["profile"]["name"]["value"] == "Ada Lovelace"
