"""The workload's changes: what a day in the life of the three systems of record looks like.

    op = pick_operation(rng)             # weighted: balance updates common, customer onboarding rare
    changes = op.run(cursor, rng, 42)    # Changes(inserted=0, updated=2, deleted=0) for a primary swap

Every operation acts on ONE customer's rows, picked by the caller. The workload gives each worker
its own customers, so two workers never touch the same rows: no deadlocks, and invariants such as
"one primary e-mail" hold without locking. An operation that finds nothing to do (no second e-mail to
promote) returns ``Changes()`` and the caller picks another; it never fails for that reason.
Operations run inside the caller's transaction, so multi-row business changes commit atomically, as
they would in the real systems.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple

import psycopg
from psycopg.rows import TupleRow

from demo import vocabulary as v
from demo.generator import CARD_TYPES, interaction, order_items
from demo.identifiers import isin

__all__ = ["OPERATIONS", "Changes", "Operation", "pick_operation"]

Cursor = psycopg.Cursor[TupleRow]


class Changes(NamedTuple):
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    # Set by operations that create a customer, so the worker can give it later changes too.
    new_customer: int | None = None

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass(frozen=True)
class Operation:
    name: str
    database: str
    weight: int
    run: Callable[[Cursor, random.Random, int], Changes]
    # More than one statement: run inside BEGIN/COMMIT so they commit together. A one-statement
    # operation runs in autocommit, one round trip instead of three (BEGIN, statement, COMMIT),
    # which at 1,000 changes/s is a quarter of the driver's and PostgreSQL's CPU on a small box.
    transactional: bool = False


def _one(cur: Cursor) -> Any:
    row = cur.fetchone()
    return None if row is None else row[0]


def _shuffle_key(rng: random.Random) -> int:
    # A per-call multiplier for "ORDER BY (id * k) % p": a seeded, repeatable pseudo-random pick among
    # a customer's rows, where ORDER BY random() would make the workload unrepeatable.
    return rng.randrange(1, 1_000_003)


def _fresh_uuid() -> uuid.UUID:
    # Not drawn from the seeded rng: a second run with the same seed would re-insert the first run's
    # keys. The seed makes the operation mix repeatable, not the keys of rows the workload creates.
    return uuid.uuid4()


# ---- crm ---------------------------------------------------------------------------------------


def email_add(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    local = f"{rng.choice(v.FIRST_NAMES).lower()}.{rng.randrange(10_000)}.{customer_id}"
    cur.execute(
        "INSERT INTO customer_emails (customer_id, email, is_primary) VALUES (%s, %s, false)",
        (customer_id, f"{local}@{rng.choice(v.EMAIL_DOMAINS)}"),
    )
    return Changes(inserted=cur.rowcount)


def email_primary_swap(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "SELECT email_id FROM customer_emails WHERE customer_id = %s AND NOT is_primary "
        "ORDER BY (email_id * %s) %% 1000003 LIMIT 1",
        (customer_id, _shuffle_key(rng)),
    )
    candidate = _one(cur)
    if candidate is None:
        return Changes()
    # The old primary is cleared first: the partial unique index allows one primary at any instant.
    cur.execute(
        "UPDATE customer_emails SET is_primary = false, updated_at = now() "
        "WHERE customer_id = %s AND is_primary",
        (customer_id,),
    )
    cleared = cur.rowcount
    cur.execute(
        "UPDATE customer_emails SET is_primary = true, updated_at = now() WHERE email_id = %s", (candidate,)
    )
    return Changes(updated=cleared + cur.rowcount)


def email_verify(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "UPDATE customer_emails SET verified_at = now(), updated_at = now() WHERE email_id = "
        "(SELECT email_id FROM customer_emails WHERE customer_id = %s AND verified_at IS NULL "
        "ORDER BY email_id LIMIT 1)",
        (customer_id,),
    )
    return Changes(updated=cur.rowcount)


def email_delete(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "DELETE FROM customer_emails WHERE email_id = (SELECT email_id FROM customer_emails "
        "WHERE customer_id = %s AND NOT is_primary ORDER BY (email_id * %s) %% 1000003 LIMIT 1)",
        (customer_id, _shuffle_key(rng)),
    )
    return Changes(deleted=cur.rowcount)


def phone_add(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "INSERT INTO customer_phones (customer_id, phone_number, phone_type, is_primary) "
        "VALUES (%s, %s, %s, false)",
        (
            customer_id,
            f"+39 3{rng.randint(20, 99)} {rng.randint(1000000, 9999999)}",
            rng.choice(("mobile", "work")),
        ),
    )
    return Changes(inserted=cur.rowcount)


def phone_delete(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "DELETE FROM customer_phones WHERE phone_id = (SELECT phone_id FROM customer_phones "
        "WHERE customer_id = %s AND NOT is_primary ORDER BY phone_id DESC LIMIT 1)",
        (customer_id,),
    )
    return Changes(deleted=cur.rowcount)


def address_update(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "UPDATE addresses SET line1 = %s, valid_from = current_date, updated_at = now() WHERE address_id = "
        "(SELECT address_id FROM addresses WHERE customer_id = %s ORDER BY address_id LIMIT 1)",
        (f"{rng.choice(v.STREETS)} {rng.randint(1, 250)}", customer_id),
    )
    return Changes(updated=cur.rowcount)


def address_add(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    city, prefix, _ = rng.choice(v.CITIES)
    cur.execute(
        "INSERT INTO addresses (customer_id, address_type, line1, city, postal_code, country, valid_from) "
        "VALUES (%s, 'mailing', %s, %s, %s, 'IT', current_date)",
        (
            customer_id,
            f"{rng.choice(v.STREETS)} {rng.randint(1, 250)}",
            city,
            f"{prefix}{rng.randint(0, 99):02d}",
        ),
    )
    return Changes(inserted=cur.rowcount)


def consent_flip(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    # An upsert: the first decision for a purpose inserts, later ones flip it. (xmax = 0) is the
    # classic test for "this row version was inserted, not updated".
    cur.execute(
        "INSERT INTO consents (customer_id, purpose, granted, channel) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = NOT consents.granted, "
        "channel = EXCLUDED.channel, updated_at = now() RETURNING (xmax = 0)",
        (
            customer_id,
            rng.choice(("marketing", "profiling", "third_party", "newsletter")),
            rng.random() < 0.5,
            rng.choice(v.CONSENT_CHANNELS),
        ),
    )
    return Changes(inserted=1) if _one(cur) else Changes(updated=1)


def profile_update(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "UPDATE customers SET segment = %s, tags = %s, "
        "preferences = preferences || jsonb_build_object('contact_hours', %s::text), updated_at = now() "
        "WHERE customer_id = %s",
        (
            rng.choice([s for s, _ in v.SEGMENTS]),
            sorted(rng.sample(v.TAGS, rng.randint(0, 3))),
            rng.choice(("morning", "afternoon", "evening", "any")),
            customer_id,
        ),
    )
    return Changes(updated=cur.rowcount)


def customer_onboard(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    """A new customer with a primary e-mail and a consent; ``customer_id`` is unused (CRM issues ids)."""
    first, last = rng.choice(v.FIRST_NAMES), rng.choice(v.LAST_NAMES)
    cur.execute(
        "INSERT INTO customers (first_name, last_name, birth_date, acquisition_channel, segment, "
        "external_ref, fiscal_code) VALUES (%s, %s, %s, %s, 'mass', %s, %s) RETURNING customer_id",
        (
            first,
            last,
            datetime(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)).date(),
            rng.choice(("web", "app", "branch")),
            _fresh_uuid(),
            # New customers are not in the contact center's register yet: any unique code will do.
            _fresh_uuid().hex[:16].upper(),
        ),
    )
    new_id = int(_one(cur))
    cur.execute(
        "INSERT INTO customer_emails (customer_id, email, is_primary) VALUES (%s, %s, true)",
        (new_id, f"{first.lower()}.{last.lower().replace(' ', '')}.{new_id}@{rng.choice(v.EMAIL_DOMAINS)}"),
    )
    cur.execute(
        "INSERT INTO consents (customer_id, purpose, granted, channel) VALUES (%s, 'marketing', %s, 'app')",
        (new_id, rng.random() < 0.5),
    )
    return Changes(inserted=3, new_customer=new_id)


# ---- core --------------------------------------------------------------------------------------


def balance_update(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    amount = Decimal(rng.randint(-50_000, 60_000)).scaleb(-2)
    cur.execute(
        "UPDATE accounts SET balance = balance + %s, updated_at = now() WHERE account_id = "
        "(SELECT account_id FROM accounts WHERE customer_id = %s AND status = 'active' "
        "AND account_type <> 'securities' ORDER BY (account_id * %s) %% 1000003 LIMIT 1)",
        (amount, customer_id, _shuffle_key(rng)),
    )
    return Changes(updated=cur.rowcount)


def card_status_change(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    # Block a card (lost, fraud suspicion) or unblock one; expired and cancelled cards stay so.
    cur.execute(
        "UPDATE cards SET status = CASE status WHEN 'active' THEN 'blocked' ELSE 'active' END::card_status, "
        "updated_at = now() WHERE card_id = "
        "(SELECT c.card_id FROM cards c JOIN accounts a USING (account_id) "
        "WHERE a.customer_id = %s AND c.status IN ('active', 'blocked') "
        "ORDER BY (c.card_id * %s) %% 1000003 LIMIT 1)",
        (customer_id, _shuffle_key(rng)),
    )
    return Changes(updated=cur.rowcount)


def card_issue(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    card_type = CARD_TYPES(rng)
    cur.execute(
        "INSERT INTO cards (account_id, pan_last4, card_type, credit_limit, expires_on, status) "
        "SELECT account_id, %s, %s, %s, current_date + interval '4 years', 'active' FROM accounts "
        "WHERE customer_id = %s AND account_type = 'current' AND status = 'active' "
        "ORDER BY account_id LIMIT 1",
        (
            f"{rng.randrange(10000):04d}",
            card_type,
            Decimal(rng.choice((1500, 3000, 5000))) if card_type == "credit" else None,
            customer_id,
        ),
    )
    return Changes(inserted=cur.rowcount)


def position_trade(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    country, nsin, _name, price = rng.choice(v.INSTRUMENTS)
    quantity = Decimal(rng.randint(1, 500_000)).scaleb(-3)
    cur.execute(
        "INSERT INTO securities_positions (account_id, isin, quantity, avg_price) "
        "SELECT account_id, %s, %s, %s FROM accounts WHERE customer_id = %s "
        "AND account_type = 'securities' AND status = 'active' ORDER BY account_id LIMIT 1 "
        "ON CONFLICT (account_id, isin) DO UPDATE SET "
        "avg_price = round((securities_positions.avg_price * securities_positions.quantity "
        "+ EXCLUDED.avg_price * EXCLUDED.quantity) "
        "/ (securities_positions.quantity + EXCLUDED.quantity), 6), "
        "quantity = securities_positions.quantity + EXCLUDED.quantity, updated_at = now() "
        "RETURNING (xmax = 0)",
        (isin(country, nsin), quantity, Decimal(price), customer_id),
    )
    if cur.rowcount == 0:
        return Changes()
    return Changes(inserted=1) if _one(cur) else Changes(updated=1)


def order_place(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    items, total = order_items(rng)
    cur.execute(
        "INSERT INTO orders "
        "(order_id, customer_id, ordered_at, total_amount, currency, status, items, channel) "
        "VALUES (%s, %s, now(), %s, 'EUR', 'placed', %s::jsonb, %s)",
        (_fresh_uuid(), customer_id, total, items, rng.choice(v.ORDER_CHANNELS)),
    )
    return Changes(inserted=cur.rowcount)


def order_advance(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "UPDATE orders SET status = CASE status WHEN 'placed' THEN 'paid' ELSE 'shipped' END::order_status, "
        "updated_at = now() WHERE order_id = (SELECT order_id FROM orders WHERE customer_id = %s "
        "AND status IN ('placed', 'paid') ORDER BY ordered_at LIMIT 1)",
        (customer_id,),
    )
    return Changes(updated=cur.rowcount)


def order_return(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "SELECT order_id, total_amount FROM orders WHERE customer_id = %s AND status = 'shipped' "
        "ORDER BY ordered_at DESC LIMIT 1",
        (customer_id,),
    )
    found = cur.fetchone()
    if found is None:
        return Changes()
    order_id, total = found
    cur.execute(
        "INSERT INTO order_returns (order_id, reason, refunded_amount, returned_at) "
        "VALUES (%s, %s, %s, now())",
        (order_id, rng.choice(v.RETURN_REASONS), total),
    )
    cur.execute("UPDATE orders SET status = 'returned', updated_at = now() WHERE order_id = %s", (order_id,))
    return Changes(inserted=1, updated=cur.rowcount)


# ---- care --------------------------------------------------------------------------------------


# The contact center knows customers by fiscal code: its own caller register maps the caller number (the
# workload picks one as it picks a CRM customer id) to the code as its agents spelled it. A customer the
# CRM created since the seed has not called yet: the operation then changes nothing.
_CALLER_CODE = "(SELECT fiscal_code FROM callers WHERE caller_id = %s)"


def interaction_log(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    row = interaction(rng, 0, "", datetime.now(UTC))
    cur.execute(
        "INSERT INTO interactions (fiscal_code, channel, direction, started_at, duration_s, subject, notes, "
        "agent_id) SELECT c.fiscal_code, %s, %s, %s, %s, %s, %s, %s FROM callers c WHERE c.caller_id = %s",
        (
            row.channel,
            row.direction,
            row.started_at,
            row.duration_s,
            row.subject,
            row.notes,
            row.agent_id,
            customer_id,
        ),
    )
    return Changes(inserted=cur.rowcount)


def interaction_close(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    # Leaves notes untouched on purpose: for a TOASTed note, Debezium then emits the update without
    # the notes value (REPLICA IDENTITY DEFAULT), which the consumer must not write over the old one.
    cur.execute(
        "UPDATE interactions SET outcome = %s, updated_at = now() WHERE interaction_id = "
        f"(SELECT interaction_id FROM interactions WHERE fiscal_code = {_CALLER_CODE} "
        "ORDER BY (outcome IS NULL) DESC, interaction_id DESC LIMIT 1)",
        (rng.choice(v.OUTCOMES), customer_id),
    )
    return Changes(updated=cur.rowcount)


def survey_answer(cur: Cursor, rng: random.Random, customer_id: int) -> Changes:
    cur.execute(
        "INSERT INTO surveys (fiscal_code, interaction_id, nps, comment, answered_at) "
        "SELECT c.fiscal_code, (SELECT max(interaction_id) FROM interactions i WHERE i.fiscal_code = "
        "c.fiscal_code), %s, %s, now() FROM callers c WHERE c.caller_id = %s",
        (
            rng.randint(0, 10),
            rng.choice(v.SURVEY_COMMENTS) if rng.random() < 0.4 else None,
            customer_id,
        ),
    )
    return Changes(inserted=cur.rowcount)


# The mix: mostly balance movements, orders and care contacts, as in a retail bank's daily change
# volume; deletes are rare, as they are in systems of record.
OPERATIONS: Final = (
    Operation("email_add", "crm", 4, email_add),
    Operation("email_primary_swap", "crm", 4, email_primary_swap, transactional=True),
    Operation("email_verify", "crm", 2, email_verify),
    Operation("email_delete", "crm", 3, email_delete),
    Operation("phone_add", "crm", 2, phone_add),
    Operation("phone_delete", "crm", 2, phone_delete),
    Operation("address_update", "crm", 2, address_update),
    Operation("address_add", "crm", 1, address_add),
    Operation("consent_flip", "crm", 6, consent_flip),
    Operation("profile_update", "crm", 4, profile_update),
    Operation("customer_onboard", "crm", 1, customer_onboard, transactional=True),
    Operation("balance_update", "core", 20, balance_update),
    Operation("card_status_change", "core", 4, card_status_change),
    Operation("card_issue", "core", 1, card_issue),
    Operation("position_trade", "core", 4, position_trade),
    Operation("order_place", "core", 8, order_place),
    Operation("order_advance", "core", 6, order_advance),
    Operation("order_return", "core", 2, order_return, transactional=True),
    Operation("interaction_log", "care", 8, interaction_log),
    Operation("interaction_close", "care", 4, interaction_close),
    Operation("survey_answer", "care", 3, survey_answer),
)
_CUMULATIVE: Final = list(itertools.accumulate(op.weight for op in OPERATIONS))


def pick_operation(rng: random.Random, operations: Sequence[Operation] = OPERATIONS) -> Operation:
    if operations is OPERATIONS:
        return OPERATIONS[bisect.bisect(_CUMULATIVE, rng.random() * _CUMULATIVE[-1])]
    return rng.choices(operations, weights=[op.weight for op in operations])[0]
