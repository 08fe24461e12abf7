"""The demo generator: deterministic, within the documented distributions, consistent with its SQL."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from demo.generator import Batch, generate
from demo.loader import schema_sql
from demo.model import DATABASES, TABLES


def _all_rows(batches: Iterable[Batch]) -> dict[str, list[tuple[Any, ...]]]:
    merged: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for batch in batches:
        for key, rows in batch.rows.items():
            merged[key].extend(rows)
    return dict(merged)


@pytest.fixture(scope="module")
def world() -> dict[str, list[tuple[Any, ...]]]:
    return _all_rows(generate(customers=2000, seed=1234, batch_size=300))


def _per_customer(rows: Iterable[tuple[Any, ...]]) -> Counter[int]:
    return Counter(row.customer_id for row in rows)  # type: ignore[attr-defined]


def test_same_seed_gives_identical_rows() -> None:
    first = _all_rows(generate(customers=300, seed=7))
    second = _all_rows(generate(customers=300, seed=7))
    assert repr(first) == repr(second)


def test_batch_size_does_not_change_the_rows() -> None:
    assert _all_rows(generate(300, 7, batch_size=1000)) == _all_rows(generate(300, 7, batch_size=17))


def test_different_seed_gives_different_rows() -> None:
    assert _all_rows(generate(100, 1)) != _all_rows(generate(100, 2))


def test_smaller_run_is_a_prefix_of_a_larger_one() -> None:
    small = _all_rows(generate(100, 5))
    large = _all_rows(generate(200, 5))
    for key, rows in small.items():
        assert large[key][: len(rows)] == rows, key


def test_generate_rejects_zero_customers() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(generate(0, 1))


def test_every_table_has_a_key_in_each_batch() -> None:
    batch = next(generate(5, 1))
    assert set(batch.rows) == {f"{db}.{t.name}" for db in DATABASES for t in TABLES[db]}


_CONSTRAINTS = ("--", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")


def test_row_types_match_the_sql_columns() -> None:
    # The loader COPYs by the row types' field names; a column renamed in only one place must fail here.
    for db in DATABASES:
        script = schema_sql(db)
        for table in TABLES[db]:
            body = re.search(rf"CREATE TABLE {table.name} \((.*?)\n\);", script, re.S)
            assert body is not None, f"{table.name} missing from demo/sql/{db}.sql"
            definitions = {
                line.split()[0]: line
                for line in body.group(1).splitlines()
                if line.strip()
                and not line.strip().startswith(("--", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"))
            }
            assert set(table.columns) <= set(definitions), f"{db}.{table.name}"
            # A column the generator leaves out must fill itself in.
            for column in set(definitions) - set(table.columns):
                assert "DEFAULT" in definitions[column], f"{db}.{table.name}.{column}"


def test_customer_ids_are_contiguous_from_one(world: dict[str, list[Any]]) -> None:
    assert [c.customer_id for c in world["crm.customers"]] == list(range(1, 2001))


def test_generated_ids_are_unique(world: dict[str, list[Any]]) -> None:
    for key, rows in world.items():
        ids = [row[0] for row in rows] if key != "crm.consents" else [(r[0], r[1]) for r in rows]
        assert len(ids) == len(set(ids)), key


def test_each_customer_has_one_to_three_emails_one_primary(world: dict[str, list[Any]]) -> None:
    counts = _per_customer(world["crm.customer_emails"])
    primaries = _per_customer(e for e in world["crm.customer_emails"] if e.is_primary)
    assert set(counts.values()) == {1, 2, 3}
    assert len(counts) == 2000
    assert set(primaries.values()) == {1}
    assert len(primaries) == 2000


def test_each_customer_has_one_or_two_phones_and_addresses(world: dict[str, list[Any]]) -> None:
    for key in ("crm.customer_phones", "crm.addresses"):
        counts = _per_customer(world[key])
        assert len(counts) == 2000
        assert set(counts.values()) == {1, 2}, key


def test_consents_are_zero_to_four_distinct_purposes(world: dict[str, list[Any]]) -> None:
    counts = _per_customer(world["crm.consents"])
    assert max(counts.values()) == 4
    assert len(counts) < 2000  # some customers gave no consent decision at all
    assert {c.purpose for c in world["crm.consents"]} == {
        "marketing",
        "profiling",
        "third_party",
        "newsletter",
    }


def test_accounts_are_one_to_three_starting_with_a_current_account(world: dict[str, list[Any]]) -> None:
    by_customer: dict[int, list[str]] = defaultdict(list)
    for account in world["core.accounts"]:
        by_customer[account.customer_id].append(account.account_type)
    assert len(by_customer) == 2000
    assert {len(kinds) for kinds in by_customer.values()} == {1, 2, 3}
    assert all(kinds[0] == "current" and len(set(kinds)) == len(kinds) for kinds in by_customer.values())


def test_closed_accounts_and_only_they_have_a_closing_date(world: dict[str, list[Any]]) -> None:
    assert all((a.status == "closed") == (a.closed_on is not None) for a in world["core.accounts"])


def test_ibans_pass_the_mod_97_check(world: dict[str, list[Any]]) -> None:
    for account in world["core.accounts"][:500]:
        rearranged = account.iban[4:] + account.iban[:4]
        assert int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1, account.iban


def test_cards_are_zero_to_two_per_current_account_only(world: dict[str, list[Any]]) -> None:
    kinds = {a.account_id: a.account_type for a in world["core.accounts"]}
    per_account = Counter(card.account_id for card in world["core.cards"])
    assert {kinds[account_id] for account_id in per_account} == {"current"}
    assert max(per_account.values()) == 2
    assert all((c.card_type == "credit") == (c.credit_limit is not None) for c in world["core.cards"])


def test_positions_belong_to_securities_accounts(world: dict[str, list[Any]]) -> None:
    kinds = {a.account_id: a.account_type for a in world["core.accounts"]}
    positions = world["core.securities_positions"]
    assert positions
    assert {kinds[p.account_id] for p in positions} == {"securities"}
    assert all(p.quantity > 0 and p.avg_price > 0 for p in positions)


def test_orders_are_zero_to_ten_with_returns_only_for_returned_orders(world: dict[str, list[Any]]) -> None:
    counts = _per_customer(world["core.orders"])
    assert max(counts.values()) == 10
    assert len(counts) < 2000
    status = {o.order_id: o.status for o in world["core.orders"]}
    returns = world["core.order_returns"]
    assert returns
    assert {status[r.order_id] for r in returns} == {"returned"}


def test_order_totals_are_exact_decimals(world: dict[str, list[Any]]) -> None:
    for order in world["core.orders"][:200]:
        assert isinstance(order.total_amount, Decimal)
        assert order.total_amount == order.total_amount.quantize(Decimal("0.01"))


def test_interactions_are_zero_to_eight_with_some_long_notes(world: dict[str, list[Any]]) -> None:
    interactions = world["care.interactions"]
    assert max(Counter(i.fiscal_code for i in interactions).values()) == 8
    long_notes = [i for i in interactions if i.notes and len(i.notes.encode()) > 3000]
    # ~5% of interactions, large enough that PostgreSQL stores them out of line (TOAST).
    assert 0.03 < len(long_notes) / len(interactions) < 0.07
    assert max(len(i.notes.encode()) for i in long_notes) > 8000


def test_surveys_score_zero_to_ten_and_cite_the_same_customers_interaction(
    world: dict[str, list[Any]],
) -> None:
    owner = {i.interaction_id: i.fiscal_code for i in world["care.interactions"]}
    surveys = world["care.surveys"]
    assert {s.nps for s in surveys} == set(range(11))
    assert any(s.interaction_id is None for s in surveys)
    assert all(owner[s.interaction_id] == s.fiscal_code for s in surveys if s.interaction_id is not None)


def test_care_knows_customers_only_by_fiscal_code_as_its_agents_spelled_it(
    world: dict[str, list[Any]],
) -> None:
    codes = {c.customer_id: c.fiscal_code for c in world["crm.customers"]}
    callers = {c.caller_id: c.fiscal_code for c in world["care.callers"]}
    assert "customer_id" not in world["care.interactions"][0]._fields
    assert len(set(codes.values())) == len(codes)  # unique, as the CRM's UNIQUE constraint requires
    assert all(callers[cid].strip().upper() == code for cid, code in codes.items())
    assert any(spelled != spelled.strip().upper() for spelled in callers.values())  # some need the rule
    assert {i.fiscal_code for i in world["care.interactions"]} <= set(callers.values())


def test_timestamps_are_timezone_aware(world: dict[str, list[Any]]) -> None:
    customer = world["crm.customers"][0]
    assert customer.created_at.tzinfo is not None
    assert customer.created_at <= customer.updated_at
