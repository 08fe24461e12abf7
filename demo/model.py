"""The rows of the three demo systems of record, one typed tuple per table.

    row = Customer(customer_id=1, first_name="Giulia", ...)
    TABLES["crm"]  # (Table("customers", Customer), Table("customer_emails", Email), ...)

A row type's field names are its table's columns, in order: the loader builds its ``COPY`` column
lists from them, so the generator and the SQL under ``demo/sql/`` cannot drift apart unnoticed (the
seed fails on the first mismatched column). Tuples rather than dataclasses because COPY writes them
as they are, which matters at 100k+ customers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple
from uuid import UUID

__all__ = [
    "DATABASES",
    "TABLES",
    "Account",
    "Address",
    "Caller",
    "Card",
    "Consent",
    "Customer",
    "Email",
    "Interaction",
    "Order",
    "OrderReturn",
    "Phone",
    "Position",
    "Survey",
    "Table",
    "database_names",
    "published_tables",
]


class Customer(NamedTuple):
    customer_id: int
    first_name: str
    last_name: str
    birth_date: date
    acquisition_channel: str
    segment: str
    vip: bool
    tags: list[str]
    preferences: str  # JSON text; jsonb accepts it as is in COPY
    external_ref: UUID
    created_at: datetime
    updated_at: datetime
    fiscal_code: str
    merged_into: int | None


class Email(NamedTuple):
    email_id: int
    customer_id: int
    email: str
    is_primary: bool
    verified_at: datetime | None
    updated_at: datetime


class Phone(NamedTuple):
    phone_id: int
    customer_id: int
    phone_number: str
    phone_type: str
    is_primary: bool
    updated_at: datetime


class Address(NamedTuple):
    address_id: int
    customer_id: int
    address_type: str
    line1: str
    city: str
    postal_code: str
    country: str
    valid_from: date
    updated_at: datetime


class Consent(NamedTuple):
    customer_id: int
    purpose: str
    granted: bool
    channel: str
    updated_at: datetime


class Account(NamedTuple):
    account_id: int
    customer_id: int
    account_type: str
    iban: str
    currency: str
    balance: Decimal
    opened_on: date
    closed_on: date | None
    status: str
    updated_at: datetime


class Card(NamedTuple):
    card_id: int
    account_id: int
    pan_last4: str
    card_type: str
    credit_limit: Decimal | None
    expires_on: date
    status: str
    updated_at: datetime


class Position(NamedTuple):
    position_id: int
    account_id: int
    isin: str
    quantity: Decimal
    avg_price: Decimal
    updated_at: datetime


class Order(NamedTuple):
    order_id: UUID
    customer_id: int
    ordered_at: datetime
    total_amount: Decimal
    currency: str
    status: str
    items: str  # JSON text
    channel: str
    updated_at: datetime


class OrderReturn(NamedTuple):
    return_id: int
    order_id: UUID
    reason: str
    refunded_amount: Decimal
    returned_at: datetime


class Caller(NamedTuple):
    caller_id: int
    fiscal_code: str


class Interaction(NamedTuple):
    interaction_id: int
    fiscal_code: str
    channel: str
    direction: str
    started_at: datetime
    duration_s: int
    subject: str
    notes: str | None
    agent_id: str
    outcome: str | None
    updated_at: datetime


class Survey(NamedTuple):
    survey_id: int
    fiscal_code: str
    interaction_id: int | None
    nps: int
    comment: str | None
    answered_at: datetime


@dataclass(frozen=True)
class Table:
    """A table of a demo database and the row type that fills it.

    ``identity`` names the generated-identity column whose sequence must be moved past the seeded
    ids, so rows inserted later (by the workload or by hand) do not collide with them.
    """

    name: str
    row_type: type[tuple[Any, ...]]
    identity: str | None
    # Captured by the source's connector (and so published); False for a system's private tables.
    captured: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        fields: tuple[str, ...] = getattr(self.row_type, "_fields")  # noqa: B009 - NamedTuple API
        return fields


DATABASES: Final = ("crm", "core", "care")

# Tables in load order: parents before children, so foreign keys hold at every COPY.
TABLES: Final[dict[str, tuple[Table, ...]]] = {
    "crm": (
        Table("customers", Customer, "customer_id"),
        Table("customer_emails", Email, "email_id"),
        Table("customer_phones", Phone, "phone_id"),
        Table("addresses", Address, "address_id"),
        Table("consents", Consent, None),
    ),
    "core": (
        Table("accounts", Account, "account_id"),
        Table("cards", Card, "card_id"),
        Table("securities_positions", Position, "position_id"),
        Table("orders", Order, None),
        Table("order_returns", OrderReturn, "return_id"),
    ),
    "care": (
        Table("callers", Caller, None, captured=False),
        Table("interactions", Interaction, "interaction_id"),
        Table("surveys", Survey, "survey_id"),
    ),
}

_PREFIX = re.compile(r"^([a-z_][a-z0-9_]{0,40})?$")


def database_names(prefix: str = "") -> dict[str, str]:
    """The PostgreSQL database of each demo system: ``{"crm": prefix + "crm", ...}``."""
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"a database prefix is lower_snake_case and starts with a letter or _, e.g. test_, got {prefix!r}"
        )
    return {db: f"{prefix}{db}" for db in DATABASES}


def published_tables(source: str) -> list[str]:
    """What the source's publication carries: its captured tables (the ones connectors/sources/
    <source>.yaml lists), the signal table (window markers must stream back) and the heartbeat table."""
    captured = (f"public.{t.name}" for t in TABLES[source] if t.captured)
    return [*captured, "public.scv_signal", "public.scv_heartbeat"]
