"""Deterministic generation of the demo systems of record, in memory, batch by batch.

    for batch in generate(customers=1000, seed=42):
        batch.rows["crm.customers"][0]  # Customer(customer_id=1, first_name=..., ...)

One ``random.Random(seed)`` drives everything and customers are generated in id order, so the same
(seed, customers) gives byte-identical rows on every run and machine, and a smaller run is a prefix of
a larger one. Nothing reads the clock: timestamps are relative to ``REFERENCE_TIME``, the seeded
world's "now". The generator is pure; ``demo.loader`` writes batches to PostgreSQL.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar

from demo import vocabulary as v
from demo.identifiers import iban_it, isin
from demo.identity import care_spelling, fiscal_code
from demo.model import (
    TABLES,
    Account,
    Address,
    Caller,
    Card,
    Consent,
    Customer,
    Email,
    Interaction,
    Order,
    OrderReturn,
    Phone,
    Position,
    Survey,
)

__all__ = ["REFERENCE_TIME", "Batch", "generate", "long_note", "random_uuid"]

REFERENCE_TIME: Final = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
_REFERENCE_DAY: Final = REFERENCE_TIME.date()
_T = TypeVar("_T")

# Share of interactions whose notes are long enough to be TOASTed out of line (see care.sql).
LONG_NOTES_SHARE: Final = 0.05


@dataclass(frozen=True)
class Batch:
    """The rows of a contiguous range of customers, keyed ``"<database>.<table>"``.

    Every key of ``demo.model.TABLES`` is present, possibly with no rows.
    """

    first_customer: int
    last_customer: int
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {f"{db}.{t.name}": [] for db, ts in TABLES.items() for t in ts}
    )

    @property
    def customers(self) -> int:
        return self.last_customer - self.first_customer + 1


def random_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (``uuid.uuid4`` reads the OS entropy pool)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def long_note(rng: random.Random, min_bytes: int = 3000, max_bytes: int = 12000) -> str:
    """Free text of ``min_bytes``..``max_bytes`` (roughly): an agent's transcript-like notes."""
    target = rng.randint(min_bytes, max_bytes)
    # Words average ~7 bytes with their separator; paragraphs make it read like pasted notes.
    words = rng.choices(v.WORDS, k=target // 7)
    paragraphs = [" ".join(words[i : i + 60]) + "." for i in range(0, len(words), 60)]
    return "\n\n".join(paragraphs)


class _Pick(Generic[_T]):
    """A weighted choice with its cumulative weights computed once.

    ``random.choices`` rebuilds them on every call, which dominated the generator's profile.
    """

    __slots__ = ("_cum", "_total", "_values")

    def __init__(self, pairs: Sequence[tuple[_T, int]]) -> None:
        self._values = [value for value, _ in pairs]
        self._cum = list(itertools.accumulate(weight for _, weight in pairs))
        self._total = self._cum[-1]

    def __call__(self, rng: random.Random) -> _T:
        return self._values[bisect.bisect(self._cum, rng.random() * self._total)]


def _counts(weights: Sequence[int]) -> _Pick[int]:
    """A count 0..len(weights)-1 drawn with the given weights."""
    return _Pick(list(enumerate(weights)))


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    # Whole seconds, like most SOR timestamps; rng.random() is several times cheaper than randrange.
    return start + timedelta(seconds=int(rng.random() * (end - start).total_seconds()))


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.random() * (end - start).days))


def _ascii(name: str) -> str:
    return (
        name.lower().replace(" ", "").replace("'", "").replace("ò", "o").replace("à", "a").replace("è", "e")
    )


# Counts per customer (weight at index = count), within the brief's ranges and skewed to the low
# end as in life.
_EMAILS: Final = _counts((0, 55, 35, 10))
_PHONES: Final = _counts((0, 70, 30))
_ADDRESSES: Final = _counts((0, 75, 25))
_CONSENTS: Final = _counts((10, 15, 25, 25, 25))
_ACCOUNTS: Final = _counts((0, 50, 35, 15))
_CARDS_PER_CURRENT: Final = _counts((15, 60, 25))
_ORDERS: Final = _counts((25, 15, 12, 10, 9, 8, 6, 5, 4, 3, 3))
_INTERACTIONS: Final = _counts((30, 22, 15, 10, 8, 6, 4, 3, 2))
_TAG_COUNT: Final = _counts((40, 35, 20, 5))

CARD_TYPES: Final = _Pick((("debit", 60), ("credit", 30), ("prepaid", 10)))
CARD_STATUS: Final = _Pick((("active", 88), ("blocked", 4), ("expired", 5), ("cancelled", 3)))
_ACCOUNT_STATUS: Final = _Pick((("active", 90), ("dormant", 6), ("blocked", 1), ("closed", 3)))
_ORDER_STATUS: Final = _Pick((("placed", 5), ("paid", 8), ("shipped", 75), ("returned", 7), ("cancelled", 5)))
_CHANNELS: Final = _Pick((("branch", 30), ("web", 25), ("app", 30), ("call_center", 5), ("partner", 10)))
_INTERACTION_CHANNELS: Final = _Pick(
    (("phone", 45), ("email", 25), ("pec", 5), ("web_form", 10), ("chat", 15))
)
_NPS: Final = _counts((2, 1, 1, 2, 2, 4, 6, 12, 20, 25, 25))
_SEGMENTS: Final = _Pick(v.SEGMENTS)
_LANGUAGES: Final = _Pick(v.LANGUAGES)
_CITIES: Final = _Pick([((city, prefix), weight) for city, prefix, weight in v.CITIES])
_QTY: Final = _Pick(((1, 80), (2, 15), (3, 5)))


class _World:
    """Id counters and the RNG; emits each customer's rows into a batch."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id: dict[str, int] = {}

    def _id(self, table: str) -> int:
        value = self.next_id.get(table, 0) + 1
        self.next_id[table] = value
        return value

    def customer(self, customer_id: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        first, last = rng.choice(v.FIRST_NAMES), rng.choice(v.LAST_NAMES)
        created = _moment(rng, datetime(2005, 1, 1, tzinfo=UTC), REFERENCE_TIME - timedelta(days=30))
        updated = _moment(rng, created, REFERENCE_TIME)
        segment = _SEGMENTS(rng)
        preferences = {
            "language": _LANGUAGES(rng),
            "paperless": rng.random() < 0.7,
            "contact_hours": rng.choice(("morning", "afternoon", "evening", "any")),
        }
        if rng.random() < 0.3:
            preferences["newsletter_topics"] = sorted(
                rng.sample(("investments", "travel", "mortgages", "offers"), 2)
            )
        out["crm.customers"].append(
            Customer(
                customer_id=customer_id,
                first_name=first,
                last_name=last,
                birth_date=_day(rng, date(1940, 1, 1), date(2006, 12, 31)),
                acquisition_channel=_CHANNELS(rng),
                segment=segment,
                vip=segment == "private" or rng.random() < 0.02,
                tags=sorted(rng.sample(v.TAGS, _TAG_COUNT(rng))),
                preferences=json.dumps(preferences, sort_keys=True),
                external_ref=random_uuid(rng),
                created_at=created,
                updated_at=updated,
                fiscal_code=fiscal_code(customer_id),
                merged_into=None,
            )
        )
        self._contacts(customer_id, first, last, created, out)
        self._accounts(customer_id, created, out)
        self._orders(customer_id, created, out)
        self._care(customer_id, created, out)

    def _contacts(
        self,
        customer_id: int,
        first: str,
        last: str,
        created: datetime,
        out: dict[str, list[tuple[Any, ...]]],
    ) -> None:
        rng = self.rng
        for n in range(_EMAILS(rng)):
            domain = rng.choice(v.EMAIL_DOMAINS if n < 2 else v.WORK_EMAIL_DOMAINS)
            local = f"{_ascii(first)}.{_ascii(last)}" if n == 0 else f"{_ascii(first)[0]}{_ascii(last)}{n}"
            verified = rng.random() < (0.85 if n == 0 else 0.5)
            out["crm.customer_emails"].append(
                Email(
                    email_id=self._id("email"),
                    customer_id=customer_id,
                    email=f"{local}{customer_id}@{domain}",
                    is_primary=n == 0,
                    verified_at=_moment(rng, created, REFERENCE_TIME) if verified else None,
                    updated_at=_moment(rng, created, REFERENCE_TIME),
                )
            )
        for n in range(_PHONES(rng)):
            mobile = n == 0 or rng.random() < 0.4
            number = (
                f"+39 3{rng.randint(20, 99)} {rng.randint(1000000, 9999999)}"
                if mobile
                else f"+39 0{rng.randint(2, 99)} {rng.randint(100000, 9999999)}"
            )
            out["crm.customer_phones"].append(
                Phone(
                    phone_id=self._id("phone"),
                    customer_id=customer_id,
                    phone_number=number,
                    phone_type="mobile" if mobile else rng.choice(("home", "work")),
                    is_primary=n == 0,
                    updated_at=_moment(rng, created, REFERENCE_TIME),
                )
            )
        for n in range(_ADDRESSES(rng)):
            if rng.random() < 0.05:
                city, postal_code, country = rng.choice(v.FOREIGN_CITIES)
            else:
                city, prefix = _CITIES(rng)
                postal_code, country = f"{prefix}{rng.randint(0, 99):02d}", "IT"
            out["crm.addresses"].append(
                Address(
                    address_id=self._id("address"),
                    customer_id=customer_id,
                    address_type="residence" if n == 0 else rng.choice(("domicile", "mailing")),
                    line1=f"{rng.choice(v.STREETS)} {rng.randint(1, 250)}",
                    city=city,
                    postal_code=postal_code,
                    country=country,
                    valid_from=_day(rng, created.date(), _REFERENCE_DAY),
                    updated_at=_moment(rng, created, REFERENCE_TIME),
                )
            )
        purposes = ("marketing", "profiling", "third_party", "newsletter")
        for purpose in sorted(rng.sample(purposes, _CONSENTS(rng))):
            out["crm.consents"].append(
                Consent(
                    customer_id=customer_id,
                    purpose=purpose,
                    granted=rng.random() < 0.6,
                    channel=rng.choice(v.CONSENT_CHANNELS),
                    updated_at=_moment(rng, created, REFERENCE_TIME),
                )
            )

    def _accounts(self, customer_id: int, created: datetime, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        extra = ["deposit", "securities"]
        rng.shuffle(extra)
        kinds = ["current", *extra][: _ACCOUNTS(rng)]
        for kind in kinds:
            account_id = self._id("account")
            opened = _day(rng, created.date(), _REFERENCE_DAY)
            status = _ACCOUNT_STATUS(rng)
            closed = _day(rng, opened, _REFERENCE_DAY) if status == "closed" else None
            balance = 0 if closed else int(rng.lognormvariate(8.5, 1.3) * 100)
            if kind == "current" and rng.random() < 0.04:
                balance = -rng.randint(1000, 200000)  # overdrawn
            out["core.accounts"].append(
                Account(
                    account_id=account_id,
                    customer_id=customer_id,
                    account_type=kind,
                    iban=iban_it(rng.choice(v.BRANCH_CODES), f"{account_id:012d}"),
                    currency="EUR" if kind != "deposit" or rng.random() < 0.9 else rng.choice(("USD", "CHF")),
                    balance=_cents(balance),
                    opened_on=opened,
                    closed_on=closed,
                    status=status,
                    updated_at=_moment(
                        rng, datetime.combine(opened, datetime.min.time(), UTC), REFERENCE_TIME
                    ),
                )
            )
            if kind == "current":
                self._cards(account_id, opened, out)
            elif kind == "securities" and not closed:
                self._positions(account_id, opened, out)

    def _cards(self, account_id: int, opened: date, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        for _ in range(_CARDS_PER_CURRENT(rng)):
            card_type = CARD_TYPES(rng)
            status = CARD_STATUS(rng)
            expires = _day(rng, _REFERENCE_DAY - timedelta(days=400), _REFERENCE_DAY + timedelta(days=1800))
            if status == "active" and expires < _REFERENCE_DAY:
                status = "expired"
            out["core.cards"].append(
                Card(
                    card_id=self._id("card"),
                    account_id=account_id,
                    pan_last4=f"{rng.randrange(10000):04d}",
                    card_type=card_type,
                    credit_limit=_cents(rng.choice((1500, 3000, 5000, 10000)) * 100)
                    if card_type == "credit"
                    else None,
                    expires_on=expires,
                    status=status,
                    updated_at=_moment(
                        rng, datetime.combine(opened, datetime.min.time(), UTC), REFERENCE_TIME
                    ),
                )
            )

    def _positions(self, account_id: int, opened: date, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        for country, nsin, _name, price in rng.sample(v.INSTRUMENTS, rng.randint(1, 6)):
            out["core.securities_positions"].append(
                Position(
                    position_id=self._id("position"),
                    account_id=account_id,
                    isin=isin(country, nsin),
                    quantity=Decimal(rng.randint(1, 2_000_000)).scaleb(-3),
                    avg_price=(Decimal(price) * Decimal(rng.randint(700, 1300)).scaleb(-3)).quantize(
                        Decimal("0.000001")
                    ),
                    updated_at=_moment(
                        rng, datetime.combine(opened, datetime.min.time(), UTC), REFERENCE_TIME
                    ),
                )
            )

    def _orders(self, customer_id: int, created: datetime, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        since = max(created, REFERENCE_TIME - timedelta(days=3 * 365))
        for _ in range(_ORDERS(rng)):
            order_id = random_uuid(rng)
            ordered_at = _moment(rng, since, REFERENCE_TIME)
            items, total = order_items(rng)
            status = _ORDER_STATUS(rng)
            out["core.orders"].append(
                Order(
                    order_id=order_id,
                    customer_id=customer_id,
                    ordered_at=ordered_at,
                    total_amount=total,
                    currency="EUR",
                    status=status,
                    items=items,
                    channel=rng.choice(v.ORDER_CHANNELS),
                    updated_at=_moment(rng, ordered_at, REFERENCE_TIME),
                )
            )
            if status == "returned":
                out["core.order_returns"].append(
                    OrderReturn(
                        return_id=self._id("return"),
                        order_id=order_id,
                        reason=rng.choice(v.RETURN_REASONS),
                        refunded_amount=total
                        if rng.random() < 0.8
                        else (total / 2).quantize(Decimal("0.01")),
                        returned_at=_moment(rng, ordered_at, REFERENCE_TIME),
                    )
                )

    def _care(self, customer_id: int, created: datetime, out: dict[str, list[tuple[Any, ...]]]) -> None:
        # The contact center knows the customer by fiscal code only, as its agents spelled it.
        rng = self.rng
        code = care_spelling(customer_id)
        out["care.callers"].append(Caller(customer_id, code))
        for _ in range(_INTERACTIONS(rng)):
            interaction_id = self._id("interaction")
            started = _moment(rng, created, REFERENCE_TIME)
            out["care.interactions"].append(interaction(rng, interaction_id, code, started))
            if rng.random() < 0.25:
                out["care.surveys"].append(survey(rng, self._id("survey"), code, interaction_id, started))
        if rng.random() < 0.05:
            out["care.surveys"].append(
                survey(rng, self._id("survey"), code, None, _moment(rng, created, REFERENCE_TIME))
            )


def order_items(rng: random.Random) -> tuple[str, Decimal]:
    """An order's items as JSON text and their total."""
    items = []
    total = Decimal(0)
    for sku, name, price in rng.sample(v.PRODUCTS, rng.randint(1, 4)):
        qty = _QTY(rng)
        items.append({"sku": sku, "name": name, "qty": qty, "unit_price": price})
        total += Decimal(price) * qty
    # Prices stay strings in JSON: a float would turn 79.90 into 79.9000000001 somewhere downstream.
    return json.dumps(items, ensure_ascii=False), total


def interaction(rng: random.Random, interaction_id: int, code: str, started: datetime) -> Interaction:
    channel = _INTERACTION_CHANNELS(rng)
    roll = rng.random()
    if roll < LONG_NOTES_SHARE:
        notes: str | None = long_note(rng)
    elif roll < 0.9:
        notes = " ".join(rng.choices(v.WORDS, k=rng.randint(8, 60)))
    else:
        notes = None
    return Interaction(
        interaction_id=interaction_id,
        fiscal_code=code,
        channel=channel,
        direction="inbound" if rng.random() < 0.8 else "outbound",
        started_at=started,
        duration_s=rng.randint(30, 1800) if channel in ("phone", "chat") else 0,
        subject=rng.choice(v.SUBJECTS),
        notes=notes,
        agent_id=rng.choice(v.AGENTS),
        outcome=rng.choice(v.OUTCOMES) if rng.random() < 0.9 else None,
        updated_at=started + timedelta(seconds=rng.randint(60, 86400)),
    )


def survey(
    rng: random.Random, survey_id: int, code: str, interaction_id: int | None, after: datetime
) -> Survey:
    return Survey(
        survey_id=survey_id,
        fiscal_code=code,
        interaction_id=interaction_id,
        nps=_NPS(rng),
        comment=rng.choice(v.SURVEY_COMMENTS) if rng.random() < 0.4 else None,
        answered_at=after + timedelta(seconds=rng.randint(600, 7 * 86400)),
    )


def generate(customers: int, seed: int, batch_size: int = 2000) -> Iterator[Batch]:
    """Rows for customers ``1..customers``, ``batch_size`` customers per batch, in id order."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    world = _World(seed)
    for first in range(1, customers + 1, batch_size):
        last = min(first + batch_size - 1, customers)
        batch = Batch(first, last)
        for customer_id in range(first, last + 1):
            world.customer(customer_id, batch.rows)
        yield batch
