"""The demo workload's operations as PL/pgSQL, for a load driver that costs the machine nothing.

    sql = render_functions("core")        # CREATE OR REPLACE FUNCTION scv_workload.step(...) ...
    conn.execute(sql)
    conn.execute("SELECT scv_workload.step(50000)")   # one business operation, e.g. 'balance_update'

Why: the Python workload (demo/workload.py) spends ~250 us of CPU per operation in the driver, a
quarter of a core at 1,000 changes/s, on the same two cores as the pipeline it measures. Here the
operation runs inside PostgreSQL and pgbench (C) only calls ``step``, so the benchmark's load costs
what the systems of record themselves cost.

The same mix as demo/operations.py: every operation of ``OPERATIONS`` has a function here with the
same name, effect and weight (tests/unit/test_demo_server_ops.py holds the two together). Random
values come from the same vocabulary; values the Python generators build (order items, interaction
notes, ISINs) are drawn from pools those generators filled when the SQL was rendered. One call is one
transaction: ``step`` tries up to 8 (operation, customer) picks until one changes something, and
takes a per-customer advisory lock without waiting (``pg_try_advisory_xact_lock``), so concurrent
clients never interleave on one customer's rows and never deadlock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from demo import vocabulary as v
from demo.generator import interaction, order_items
from demo.identifiers import isin
from demo.operations import OPERATIONS

__all__ = ["FUNCTIONS", "SCHEMA", "database_weight", "render_functions"]

SCHEMA: Final = "scv_workload"
_POOL = 32  # samples drawn per generated pool; enough variety, a function body of a few hundred KB
_ATTEMPTS = 8  # as demo/workload.py's _MAX_ATTEMPTS


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    # Standard-conforming strings (PostgreSQL's default since 9.1): only the quote needs doubling.
    return "'" + str(value).replace("'", "''") + "'"


def _array(values: Iterable[object], cast: str = "text") -> str:
    return f"ARRAY[{', '.join(_literal(x) for x in values)}]::{cast}[]"


def _pick(values: Sequence[object], cast: str = "text") -> str:
    """An SQL expression: one of ``values`` at random."""
    return f"{SCHEMA}.pick({_array(values, cast)})"


def _pools(seed: int) -> dict[str, list[object]]:
    rng = random.Random(f"server-ops/{seed}")
    orders = [order_items(rng) for _ in range(_POOL)]
    contacts = [interaction(rng, 0, "", datetime.now(UTC)) for _ in range(_POOL)]
    return {
        "order_items": [items for items, _ in orders],
        "order_totals": [total for _, total in orders],
        "channel": [c.channel for c in contacts],
        "direction": [c.direction for c in contacts],
        "duration_s": [c.duration_s for c in contacts],
        "subject": [c.subject for c in contacts],
        "notes": [c.notes for c in contacts],
        "agent_id": [c.agent_id for c in contacts],
    }


_HELPERS = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE OR REPLACE FUNCTION {SCHEMA}.pick(anyarray) RETURNS anyelement LANGUAGE sql VOLATILE AS
  $$ SELECT $1[1 + floor(random() * cardinality($1))::int] $$;
CREATE OR REPLACE FUNCTION {SCHEMA}.between(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql VOLATILE AS
  $$ SELECT lo + floor(random() * (hi - lo + 1))::bigint $$;
"""


def _function(name: str, body: str, declare: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.{name}(cid bigint) RETURNS int LANGUAGE plpgsql AS $fn$\n"
        f"DECLARE n int := 0; {declare}\nBEGIN\n{body}\nRETURN n;\nEND $fn$;\n"
    )


def _crm() -> dict[str, str]:
    first, domains = v.FIRST_NAMES, v.EMAIL_DOMAINS
    purposes = ("marketing", "profiling", "third_party", "newsletter")
    return {
        "email_add": _function(
            "email_add",
            f"INSERT INTO customer_emails (customer_id, email, is_primary) VALUES (cid, "
            f"lower({_pick(first)}) || '.' || {SCHEMA}.between(0, 9999) || '.' || cid || '@' || "
            f"{_pick(domains)}, false);\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "email_primary_swap": _function(
            "email_primary_swap",
            "SELECT email_id INTO candidate FROM customer_emails WHERE customer_id = cid AND NOT is_primary "
            "ORDER BY random() LIMIT 1;\n"
            "IF candidate IS NULL THEN RETURN 0; END IF;\n"
            "UPDATE customer_emails SET is_primary = false, updated_at = now() "
            "WHERE customer_id = cid AND is_primary;\nGET DIAGNOSTICS n = ROW_COUNT;\n"
            "UPDATE customer_emails SET is_primary = true, updated_at = now() WHERE email_id = candidate;\n"
            "n := n + 1;",
            declare="candidate bigint;",
        ),
        "email_verify": _function(
            "email_verify",
            "UPDATE customer_emails SET verified_at = now(), updated_at = now() WHERE email_id = "
            "(SELECT email_id FROM customer_emails WHERE customer_id = cid AND verified_at IS NULL "
            "ORDER BY email_id LIMIT 1);\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "email_delete": _function(
            "email_delete",
            "DELETE FROM customer_emails WHERE email_id = (SELECT email_id FROM customer_emails "
            "WHERE customer_id = cid AND NOT is_primary ORDER BY random() LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "phone_add": _function(
            "phone_add",
            "INSERT INTO customer_phones (customer_id, phone_number, phone_type, is_primary) VALUES (cid, "
            f"'+39 3' || {SCHEMA}.between(20, 99) || ' ' || {SCHEMA}.between(1000000, 9999999), "
            f"{_pick(('mobile', 'work'))}::phone_type, false);\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "phone_delete": _function(
            "phone_delete",
            "DELETE FROM customer_phones WHERE phone_id = (SELECT phone_id FROM customer_phones "
            "WHERE customer_id = cid AND NOT is_primary ORDER BY phone_id DESC LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "address_update": _function(
            "address_update",
            f"UPDATE addresses SET line1 = {_pick(v.STREETS)} || ' ' || {SCHEMA}.between(1, 250), "
            "valid_from = current_date, updated_at = now() WHERE address_id = "
            "(SELECT address_id FROM addresses WHERE customer_id = cid ORDER BY address_id LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "address_add": _function(
            "address_add",
            f"city := {SCHEMA}.between(1, {len(v.CITIES)});\n"
            "INSERT INTO addresses (customer_id, address_type, line1, city, postal_code, country, "
            f"valid_from) VALUES (cid, 'mailing', {_pick(v.STREETS)} || ' ' || {SCHEMA}.between(1, 250), "
            f"({_array(c for c, _, _ in v.CITIES)})[city], "
            f"({_array(p for _, p, _ in v.CITIES)})[city] || lpad({SCHEMA}.between(0, 99)::text, 2, '0'), "
            "'IT', current_date);\nGET DIAGNOSTICS n = ROW_COUNT;",
            declare="city int;",
        ),
        "consent_flip": _function(
            "consent_flip",
            "INSERT INTO consents (customer_id, purpose, granted, channel) VALUES (cid, "
            f"{_pick(purposes)}::consent_purpose, random() < 0.5, {_pick(v.CONSENT_CHANNELS)}) "
            "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = NOT consents.granted, "
            "channel = EXCLUDED.channel, updated_at = now();\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "profile_update": _function(
            "profile_update",
            f"UPDATE customers SET segment = {_pick([s for s, _ in v.SEGMENTS])}, "
            f"tags = (SELECT coalesce(array_agg(t ORDER BY t), '{{}}') FROM (SELECT t FROM "
            f"unnest({_array(v.TAGS)}) t ORDER BY random() LIMIT {SCHEMA}.between(0, 3)) s), "
            "preferences = preferences || jsonb_build_object('contact_hours', "
            f"{_pick(('morning', 'afternoon', 'evening', 'any'))}), updated_at = now() "
            "WHERE customer_id = cid;\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "customer_onboard": _function(
            "customer_onboard",
            f"first := {_pick(first)}; last := {_pick(v.LAST_NAMES)};\n"
            "INSERT INTO customers (first_name, last_name, birth_date, acquisition_channel, segment, "
            "external_ref, fiscal_code) VALUES (first, last, date '1950-01-01' + "
            f"{SCHEMA}.between(0, 55 * 365)::int, "
            f"{_pick(('web', 'app', 'branch'))}::acquisition_channel, 'mass', "
            "gen_random_uuid(), upper(substr(md5(gen_random_uuid()::text), 1, 16))) "
            "RETURNING customer_id INTO new_id;\n"
            "INSERT INTO customer_emails (customer_id, email, is_primary) VALUES (new_id, "
            f"lower(first) || '.' || lower(replace(last, ' ', '')) || '.' || new_id || '@' || "
            f"{_pick(domains)}, true);\n"
            "INSERT INTO consents (customer_id, purpose, granted, channel) "
            "VALUES (new_id, 'marketing', random() < 0.5, 'app');\nn := 3;",
            declare="new_id bigint; first text; last text;",
        ),
    }


def _core(pools: dict[str, list[object]]) -> dict[str, str]:
    isins = [isin(country, nsin) for country, nsin, _name, _price in v.INSTRUMENTS]
    prices = [Decimal(price) for _c, _n, _name, price in v.INSTRUMENTS]
    return {
        "balance_update": _function(
            "balance_update",
            f"UPDATE accounts SET balance = balance + {SCHEMA}.between(-50000, 60000) / 100.0, "
            "updated_at = now() WHERE account_id = (SELECT account_id FROM accounts WHERE customer_id = cid "
            "AND status = 'active' AND account_type <> 'securities' ORDER BY random() LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "card_status_change": _function(
            "card_status_change",
            "UPDATE cards SET status = CASE status WHEN 'active' THEN 'blocked' ELSE 'active' "
            "END::card_status, updated_at = now() WHERE card_id = (SELECT c.card_id FROM cards c "
            "JOIN accounts a USING (account_id) WHERE a.customer_id = cid "
            "AND c.status IN ('active', 'blocked') ORDER BY random() LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "card_issue": _function(
            "card_issue",
            # demo/generator.py's CARD_TYPES: debit 60, credit 30, prepaid 10.
            "roll := random();\n"
            "INSERT INTO cards (account_id, pan_last4, card_type, credit_limit, expires_on, status) "
            f"SELECT account_id, lpad({SCHEMA}.between(0, 9999)::text, 4, '0'), "
            "CASE WHEN roll < 0.6 THEN 'debit' WHEN roll < 0.9 THEN 'credit' ELSE 'prepaid' END::card_type, "
            f"CASE WHEN roll >= 0.6 AND roll < 0.9 THEN {_pick([1500, 3000, 5000], 'numeric')} END, "
            "current_date + interval '4 years', 'active' FROM accounts WHERE customer_id = cid "
            "AND account_type = 'current' AND status = 'active' ORDER BY account_id LIMIT 1;\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
            declare="roll double precision;",
        ),
        "position_trade": _function(
            "position_trade",
            f"i := {SCHEMA}.between(1, {len(isins)});\n"
            "INSERT INTO securities_positions (account_id, isin, quantity, avg_price) "
            f"SELECT account_id, ({_array(isins)})[i], {SCHEMA}.between(1, 500000) / 1000.0, "
            f"({_array(prices, 'numeric')})[i] FROM accounts WHERE customer_id = cid "
            "AND account_type = 'securities' AND status = 'active' ORDER BY account_id LIMIT 1 "
            "ON CONFLICT (account_id, isin) DO UPDATE SET avg_price = round((securities_positions.avg_price "
            "* securities_positions.quantity + EXCLUDED.avg_price * EXCLUDED.quantity) "
            "/ (securities_positions.quantity + EXCLUDED.quantity), 6), "
            "quantity = securities_positions.quantity + EXCLUDED.quantity, updated_at = now();\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
            declare="i int;",
        ),
        "order_place": _function(
            "order_place",
            f"i := {SCHEMA}.between(1, {_POOL});\n"
            "INSERT INTO orders (order_id, customer_id, ordered_at, total_amount, currency, status, items, "
            "channel) VALUES (gen_random_uuid(), cid, now(), "
            f"({_array(pools['order_totals'], 'numeric')})[i], "
            f"'EUR', 'placed', ({_array(pools['order_items'])})[i]::jsonb, {_pick(v.ORDER_CHANNELS)});\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
            declare="i int;",
        ),
        "order_advance": _function(
            "order_advance",
            "UPDATE orders SET status = CASE status WHEN 'placed' THEN 'paid' ELSE 'shipped' "
            "END::order_status, updated_at = now() WHERE order_id = (SELECT order_id FROM orders "
            "WHERE customer_id = cid AND status IN ('placed', 'paid') ORDER BY ordered_at LIMIT 1);\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "order_return": _function(
            "order_return",
            "SELECT order_id, total_amount INTO returned, refund FROM orders WHERE customer_id = cid "
            "AND status = 'shipped' ORDER BY ordered_at DESC LIMIT 1;\n"
            "IF returned IS NULL THEN RETURN 0; END IF;\n"
            "INSERT INTO order_returns (order_id, reason, refunded_amount, returned_at) "
            f"VALUES (returned, {_pick(v.RETURN_REASONS)}, refund, now());\n"
            "UPDATE orders SET status = 'returned', updated_at = now() WHERE order_id = returned;\nn := 2;",
            declare="returned uuid; refund numeric;",
        ),
    }


# The contact center keys by fiscal code, found in its caller register from the caller number (a
# customer the CRM created since the seed has not called yet: nothing changes).
_CALLER_CODE = "(SELECT fiscal_code FROM callers WHERE caller_id = cid)"


def _care(pools: dict[str, list[object]]) -> dict[str, str]:
    columns = ("channel", "direction", "duration_s", "subject", "notes", "agent_id")
    casts = {"duration_s": "int"}
    values = ", ".join(f"({_array(pools[c], casts.get(c, 'text'))})[i]" for c in columns)
    return {
        "interaction_log": _function(
            "interaction_log",
            f"i := {SCHEMA}.between(1, {_POOL});\n"
            "INSERT INTO interactions (fiscal_code, channel, direction, started_at, duration_s, subject, "
            "notes, agent_id) SELECT c.fiscal_code, x.channel::interaction_channel, "
            "x.direction::interaction_direction, now(), x.duration_s, "
            f"x.subject, x.notes, x.agent_id FROM (SELECT {values}) AS x({', '.join(columns)}) "
            "JOIN callers c ON c.caller_id = cid;\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
            declare="i int;",
        ),
        "interaction_close": _function(
            "interaction_close",
            # Leaves notes untouched: a TOASTed note then travels as Debezium's unavailable value.
            f"UPDATE interactions SET outcome = {_pick(v.OUTCOMES)}, updated_at = now() "
            "WHERE interaction_id = (SELECT interaction_id FROM interactions "
            f"WHERE fiscal_code = {_CALLER_CODE} "
            "ORDER BY (outcome IS NULL) DESC, interaction_id DESC LIMIT 1);\nGET DIAGNOSTICS n = ROW_COUNT;",
        ),
        "survey_answer": _function(
            "survey_answer",
            "INSERT INTO surveys (fiscal_code, interaction_id, nps, comment, answered_at) "
            "SELECT c.fiscal_code, (SELECT max(interaction_id) FROM interactions i WHERE i.fiscal_code = "
            f"c.fiscal_code), {SCHEMA}.between(0, 10), CASE WHEN random() < 0.4 "
            f"THEN {_pick(v.SURVEY_COMMENTS)} END, now() FROM callers c WHERE c.caller_id = cid;\n"
            "GET DIAGNOSTICS n = ROW_COUNT;",
        ),
    }


def _functions(database: str, seed: int) -> dict[str, str]:
    if database == "crm":
        return _crm()
    pools = _pools(seed)
    if database == "core":
        return _core(pools)
    if database == "care":
        return _care(pools)
    raise ValueError(f"no demo database {database!r}; expected crm, core or care")


# Operation names per database, as rendered: compared with OPERATIONS by the unit tests.
FUNCTIONS: Final = {db: tuple(_functions(db, 0)) for db in ("crm", "core", "care")}


def database_weight(database: str) -> int:
    return sum(op.weight for op in OPERATIONS if op.database == database)


def _step(database: str) -> str:
    branches: list[str] = []
    bound = 0
    for op in (o for o in OPERATIONS if o.database == database):
        bound += op.weight
        keyword = "IF" if not branches else "ELSIF"
        branches.append(f"  {keyword} roll < {bound} THEN op := '{op.name}'; n := {SCHEMA}.{op.name}(cid);")
    return (
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.step(max_customer bigint) RETURNS text "
        "LANGUAGE plpgsql AS $fn$\n"
        "DECLARE roll double precision; cid bigint; op text; n int;\nBEGIN\n"
        f"FOR attempt IN 1..{_ATTEMPTS} LOOP\n"
        f"  cid := {SCHEMA}.between(1, max_customer);\n"
        "  CONTINUE WHEN NOT pg_try_advisory_xact_lock(cid);\n"
        f"  roll := random() * {bound};\n" + "\n".join(branches) + "\n  END IF;\n"
        "  IF n > 0 THEN RETURN op; END IF;\n"
        "END LOOP;\nRETURN 'skipped';\nEND $fn$;\n"
    )


def render_functions(database: str, seed: int = 0) -> str:
    """The SQL that (re)creates schema ``scv_workload`` and its functions in ``database``."""
    functions = _functions(database, seed)
    return _HELPERS + "".join(functions.values()) + _step(database)
