"""One customer across systems: cross-source keys, normalisation, merges and history, through the
planner and the applier against an in-memory store (tests/unit/fake_store.py). The same behaviours on
the real stack: tests/integration/test_identity.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from consumer.envelope import ChangeEvent
from consumer.mapping import place
from consumer.planner import Located, Redirects
from scv.contracts.registration import LookupKey, TableMapping
from store.mutations import EntityRef
from tests.unit.fake_store import FakeStore, applier

CUSTOMERS = TableMapping(
    "crm",
    "public.customers",
    "profile",
    customer_key="customer_id",
    customer_key_normalize=("number",),
    keys=(LookupKey("fiscal_code", "fiscal_code", ("trim", "upper")),),
    merge_into="merged_into",
)
INTERACTIONS = TableMapping(
    "care",
    "public.interactions",
    "interaction",
    via_table="public.customers",
    via_column="fiscal_code",
    via_source="crm",
    via_key="fiscal_code",
    via_normalize=("trim", "upper"),
    on_delete="keep",
)
ACCOUNTS = TableMapping(
    "core", "public.accounts", "account", customer_key="holder", customer_key_normalize=("number",)
)
CODE = "RSSMRA80A01H501U"


def change(table: TableMapping, op: str, row: dict[str, Any], ts: int) -> Located:
    key_column = {"public.customers": "customer_id", "public.interactions": "id", "public.accounts": "id"}
    key = {key_column[table.table]: row[key_column[table.table]]}
    event = ChangeEvent(
        source=table.source,
        table=table.table,
        op=op,  # type: ignore[arg-type]
        key=key,
        before=None,
        after=None if op == "d" else row,
        unavailable=frozenset(),
        write_ts=ts,
        snapshot=None,
        lsn=None,
    )
    return Located(event, table, place(event, table))


def customer(cid: int, ts: int, code: str = CODE, merged_into: int | None = None, op: str = "c") -> Located:
    row = {"customer_id": cid, "fiscal_code": code, "merged_into": merged_into, "name": f"c{cid}"}
    return change(CUSTOMERS, op, row, ts)


def interaction(iid: int, ts: int, code: str = CODE, op: str = "c") -> Located:
    return change(INTERACTIONS, op, {"id": iid, "fiscal_code": code, "subject": f"call {iid}"}, ts)


def account(aid: int, holder: Any, ts: int, op: str = "c") -> Located:
    return change(ACCOUNTS, op, {"id": aid, "holder": holder}, ts)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def ref(table: TableMapping, entity_id: str) -> EntityRef:
    return EntityRef(table.source, table.table, entity_id)


def test_interaction_before_its_crm_customer_waits_parked_then_joins_it(store: FakeStore) -> None:
    run = applier(store)
    run.apply([interaction(1, ts=100)])
    parked = store.customer_of(ref(INTERACTIONS, "1"))
    assert parked == f"~parked/crm/public.customers/fiscal_code/{CODE}"
    assert store.parked("care", "public.interactions", 10) == ["1"]
    run.apply([customer(7, ts=200)])
    assert store.customer_of(ref(INTERACTIONS, "1")) == "7"
    assert store.view_of("7") == {"7", "1"}
    assert store.view_of(parked) == set()
    assert store.parked("care", "public.interactions", 10) == []


def test_interaction_after_its_crm_customer_lands_with_it_directly(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(7, ts=100)])
    run.apply([interaction(1, ts=200, code=f"  {CODE.lower()} ")])  # spelled differently at the source
    assert store.customer_of(ref(INTERACTIONS, "1")) == "7"
    assert store.parked("care", "public.interactions", 10) == []


def test_owner_and_child_in_one_batch_land_together_in_either_order(store: FakeStore) -> None:
    applier(store).apply([interaction(1, ts=100), customer(7, ts=90), interaction(2, ts=110)])
    assert store.view_of("7") == {"7", "1", "2"}


def test_fiscal_code_correction_moves_the_interactions(store: FakeStore) -> None:
    run = applier(store)
    other = "VRDLGU75B02F205X"
    run.apply(
        [
            customer(7, ts=100, code=other),
            interaction(1, ts=110, code=CODE),
            interaction(2, ts=120, code=other),
        ]
    )
    assert store.customer_of(ref(INTERACTIONS, "2")) == "7"
    assert store.customer_of(ref(INTERACTIONS, "1")).startswith("~parked/")  # type: ignore[union-attr]
    # The CRM corrects customer 7's fiscal code: interaction 1 is now its, interaction 2 nobody's.
    run.apply([customer(7, ts=200, code=CODE, op="u")])
    assert store.customer_of(ref(INTERACTIONS, "1")) == "7"
    assert store.customer_of(ref(INTERACTIONS, "2")) == f"~parked/crm/public.customers/fiscal_code/{other}"


def test_code_moving_to_another_customer_takes_its_interactions_along(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(7, ts=100), interaction(1, ts=110)])
    run.apply([customer(7, ts=200, code="XXXXXXXXXXXXXXXX", op="u"), customer(8, ts=200)])
    assert store.customer_of(ref(INTERACTIONS, "1")) == "8"


def test_a_key_held_by_two_customers_resolves_to_the_smallest_id(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(9, ts=100), customer(70, ts=100), interaction(1, ts=110)])
    assert store.customer_of(ref(INTERACTIONS, "1")) == "70"  # entity ids compare as text: '70' < '9'


def test_customer_ids_spelled_differently_share_one_partition(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(42, ts=100), account(1, "42.00", ts=100), account(2, Decimal("42.0"), ts=100)])
    run.apply([account(3, " 042 ".strip(), ts=100)])
    assert store.view_of("42") == {"42", "1", "2", "3"}


def test_a_key_that_normalises_to_nothing_is_refused_by_name() -> None:
    from consumer.exceptions import PlacementError

    with pytest.raises(PlacementError, match=r"fiscal_code: .* empty once normalised"):
        interaction(1, ts=100, code="   ")


def test_merge_moves_everything_to_the_survivor_and_undo_moves_it_back(store: FakeStore) -> None:
    run = applier(store)
    other = "VRDLGU75B02F205X"
    run.apply([customer(7, ts=100), customer(8, ts=100, code=other), account(1, 7, ts=100)])
    run.apply([interaction(1, ts=110), account(2, 8, ts=110)])
    assert store.view_of("7") == {"7", "1"} | {"1"}  # the account and the interaction share id 1
    # CRM merges customer 7 into 8.
    run.apply([customer(7, ts=200, merged_into=8, op="u")])
    assert store.view_of("7") == set()
    assert {(k.table, k.entity_id) for k in store.rows if store.rows[k][1] and k.customer_id == "8"} == {
        ("public.customers", "7"),
        ("public.customers", "8"),
        ("public.accounts", "1"),
        ("public.accounts", "2"),
        ("public.interactions", "1"),
    }
    assert store.redirects() == {"7": "8"}
    assert store.rows_of("8")["2"].home_id == "8"
    # A change for the absorbed customer after the merge lands with the survivor.
    run.apply([account(3, 7, ts=250)])
    assert store.customer_of(ref(ACCOUNTS, "3")) == "8"
    # The merge is undone: what is 7's goes home, 8's own rows stay.
    run.apply([customer(7, ts=300, merged_into=None, op="u")])
    assert store.redirects() == {}
    assert store.customer_of(ref(ACCOUNTS, "1")) == "7"
    assert store.customer_of(ref(ACCOUNTS, "3")) == "7"
    assert store.customer_of(ref(INTERACTIONS, "1")) == "7"
    assert store.customer_of(ref(CUSTOMERS, "7")) == "7"
    assert store.customer_of(ref(ACCOUNTS, "2")) == "8"


def test_merges_chain_to_the_last_survivor() -> None:
    redirects = Redirects({"a": "b", "b": "c"})
    assert redirects.resolve("a") == "c"
    assert redirects.resolve("c") == "c"
    assert Redirects({"a": "b", "b": "a"}).resolve("a") in {"a", "b"}  # a cycle stops, never loops


def test_a_process_that_missed_a_merge_catches_up_when_it_reloads(store: FakeStore) -> None:
    merger, late = applier(store), applier(store)
    merger.apply(
        [customer(7, ts=100), customer(8, ts=100, code="X"), customer(7, ts=200, merged_into=8, op="u")]
    )
    # The late process has not re-read the merges: it writes an account into 7's partition.
    late.apply([account(1, 7, ts=300)])
    assert store.customer_of(ref(ACCOUNTS, "1")) == "7"
    assert late.load_redirects() is True
    assert store.customer_of(ref(ACCOUNTS, "1")) == "8"
    assert store.view_of("7") == set()


def test_keep_marks_a_deleted_entity_ended(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(7, ts=100), interaction(1, ts=110)])
    run.apply([interaction(1, ts=200, op="d")])
    row = store.rows_of("7")["1"]
    assert row.ended_at_us == 200
    assert row.attributes["subject"] == "call 1"
    # Inserted again later: alive again.
    run.apply([interaction(1, ts=300)])
    assert store.rows_of("7")["1"].ended_at_us is None


def test_remove_deletes_the_entity_and_releases_its_keys(store: FakeStore) -> None:
    run = applier(store)
    run.apply([customer(7, ts=100), interaction(1, ts=110)])
    run.apply([customer(7, ts=200, op="d")])
    assert store.customer_of(ref(CUSTOMERS, "7")) is None
    # The interaction's customer is gone from CRM: it waits parked for a customer holding its code.
    assert store.customer_of(ref(INTERACTIONS, "1")).startswith("~parked/")  # type: ignore[union-attr]


def test_settle_places_an_entity_whose_owner_arrived_without_seeing_it(store: FakeStore) -> None:
    run = applier(store)
    run.apply([interaction(1, ts=100)])
    # The owner's key lands as another process would when the child's link was not yet visible.
    other = FakeStore()
    applier(other).apply([customer(7, ts=200)])
    store.index.update(other.index)
    store.owners.update(other.owners)
    store.rows.update(other.rows)
    assert store.customer_of(ref(INTERACTIONS, "1")).startswith("~parked/")  # type: ignore[union-attr]
    settled = run.settle_parked([("care", "public.interactions")])
    assert settled.moved == 1
    assert settled.waiting == {("care", "public.interactions"): 0}
    assert store.customer_of(ref(INTERACTIONS, "1")) == "7"
    assert store.parked("care", "public.interactions", 10) == []
