"""The pure core both clients share: the statements, rows -> typed views, page tokens, and what a
driver error means. No I/O: the sync and asyncio clients differ only in how they wait for rows.

    rows = [("email", "crm", "public.emails", "7", {"email": "s:a@b.c"}, 1764547200000000, applied_at)]
    view = build_view("42", rows, read_at=now, stale=False)
    error = map_error(driver_exception, "reading customer 42")     # a ViewClientError
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra import (
    AuthenticationFailed,
    DriverException,
    InvalidRequest,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unauthorized,
    Unavailable,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException

from scv.client.composition import CompositionRules
from scv.client.exceptions import (
    ClientConfigurationError,
    CustomerNotFound,
    InvalidPageToken,
    StoreTimeout,
    StoreUnavailable,
    ViewClientError,
)
from scv.client.models import CustomerView, EntityView, SectionPage
from scv.contracts.registration import RegistrationError, SourceMapping

__all__ = [
    "DRIVER_ERRORS",
    "PageTokens",
    "Row",
    "Statements",
    "build_entity",
    "build_page",
    "build_view",
    "composition_rules",
    "map_error",
    "may_fall_back",
]

# One row of customer_view as the statements below select it (the driver's tuple rows).
Row = tuple[str, str, str, str, dict[str, str] | None, int | None, datetime, datetime | None]

_COLUMNS = "kind, source, table_name, entity_id, attributes, source_ts_us, applied_at, ended_at"
# A merge chain longer than this is a loop written by hand at the source: stop following it.
MAX_REDIRECTS = 16


@dataclass(frozen=True)
class Statements:
    """The CQL of every read; each is one partition (a customer), so each goes to its replicas."""

    keyspace: str

    @property
    def view(self) -> str:
        return f"SELECT {_COLUMNS} FROM {self.keyspace}.customer_view WHERE customer_id = ?"

    @property
    def section(self) -> str:
        return f"SELECT {_COLUMNS} FROM {self.keyspace}.customer_view WHERE customer_id = ? AND kind = ?"

    @property
    def entity(self) -> str:
        return (
            f"SELECT {_COLUMNS} FROM {self.keyspace}.customer_view WHERE customer_id = ? AND kind = ? "
            "AND source = ? AND table_name = ? AND entity_id = ?"
        )

    @property
    def exists(self) -> str:
        return f"SELECT kind FROM {self.keyspace}.customer_view WHERE customer_id = ? LIMIT 1"

    @property
    def redirect(self) -> str:
        """The survivor a merged customer was merged into (no row: not merged)."""
        return f"SELECT survivor_id FROM {self.keyspace}.customer_redirects WHERE customer_id = ?"

    @property
    def registrations(self) -> str:
        """The sources' registrations: the composition rules (contacts, profile) come from them."""
        return f"SELECT mapping FROM {self.keyspace}.source_registrations"


def composition_rules(mappings: Iterable[str | None]) -> CompositionRules:
    """The composition rules of the registered sources (a registration that does not parse is
    skipped: the replicator reports it, and a read must not fail for it)."""
    parsed = []
    for text in mappings:
        if not text:
            continue
        try:
            parsed.append(SourceMapping.from_json(text))
        except RegistrationError:
            continue
    return CompositionRules.of(parsed)


def storable(customer_id: str) -> bool:
    """Whether ``customer_id`` can be a partition key at all: CQL refuses an empty key and one over
    64 KiB, so no view can exist for them (they are not found, without asking the store)."""
    return 0 < len(customer_id.encode("utf-8", "surrogatepass")) <= 0xFFFF


# -- rows -> typed views --------------------------------------------------------------------------


def _from_us(micros: int | None) -> datetime:
    return datetime.fromtimestamp((micros or 0) / 1_000_000, tz=UTC)


def build_entity(customer_id: str, row: Row) -> EntityView:
    kind, source, table, entity_id, cells, source_ts_us, applied_at, ended_at = row
    return EntityView(
        customer_id, kind, entity_id, source, table, cells or {}, source_ts_us or 0, applied_at, ended_at
    )


def version_of(rows: Iterable[Row], salt: str = "") -> str:
    """A digest of what the rows last applied: every entity's key and write times. Any write or
    delete changes it (a replayed older change loses under last-write-wins and changes nothing)."""
    text = "\x1e".join(
        f"{kind}\x1f{source}\x1f{table}\x1f{entity_id}\x1f{source_ts_us}\x1f{applied_at.isoformat()}"
        f"\x1f{ended_at.isoformat() if ended_at else ''}"
        for kind, source, table, entity_id, _cells, source_ts_us, applied_at, ended_at in rows
    )
    return hashlib.blake2b((salt + "\x1d" + text).encode(), digest_size=12).hexdigest()


def build_view(
    customer_id: str,
    rows: Sequence[Row],
    read_at: datetime,
    stale: bool,
    *,
    include_ended: bool = True,
    redirected_from: str | None = None,
    rules: CompositionRules | None = None,
) -> CustomerView:
    """The whole view from the partition's rows (clustering order: kind, source, table, id).

    ``include_ended=False`` leaves out entities the source deleted but the view keeps as history;
    ``redirected_from``: the merged customer whose read answered with this (the survivor's) view."""
    if not rows:
        raise CustomerNotFound(redirected_from or customer_id)
    sections: dict[str, list[EntityView]] = {}
    for kind, source, table, entity_id, cells, source_ts_us, applied_at, ended_at in rows:
        if ended_at is not None and not include_ended:
            continue
        entity = EntityView(
            customer_id, kind, entity_id, source, table, cells or {}, source_ts_us or 0, applied_at, ended_at
        )
        sections.setdefault(kind, []).append(entity)
    last_applied = max(row[6] for row in rows).replace(tzinfo=UTC)
    return CustomerView(
        customer_id=customer_id,
        sections={kind: tuple(entities) for kind, entities in sections.items()},
        read_at=read_at,
        last_applied=last_applied,
        last_source_ts=_from_us(max((row[5] or 0) for row in rows)),
        version=version_of(rows, salt=redirected_from or ""),
        possibly_stale=stale,
        redirected_from=redirected_from,
        rules=rules,
    )


def build_page(
    customer_id: str,
    section: str,
    rows: Sequence[Row],
    next_token: str | None,
    read_at: datetime,
    stale: bool,
) -> SectionPage:
    return SectionPage(
        customer_id=customer_id,
        section=section,
        entities=tuple(build_entity(customer_id, row) for row in rows),
        next_page_token=next_token,
        read_at=read_at,
        version=version_of(rows, salt=f"{section}\x1f{next_token or ''}"),
        possibly_stale=stale,
    )


# -- page tokens ----------------------------------------------------------------------------------

_TOKEN_VERSION = 1
_MAC_BYTES = 16
_MAX_TOKEN_CHARS = 4096


class PageTokens:
    """Opaque page tokens: the driver's paging state, sealed with an HMAC over the customer id and
    the section, so a token cannot be replayed against (or edited into) another customer's partition.

        token = tokens.seal("42", "interaction", paging_state)
        paging_state = tokens.open("42", "interaction", token)   # InvalidPageToken otherwise

    The paging state itself holds primary-key data of the partition (the last row read), which is
    why it is never handed out bare: the MAC makes it unforgeable, base64 makes it opaque.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ClientConfigurationError(
                "page_token_key is shorter than 16 bytes; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        self._key = key

    def _mac(self, customer_id: str, section: str, state: bytes) -> bytes:
        message = b"scv.page\x00" + _framed(customer_id) + _framed(section) + state
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def seal(self, customer_id: str, section: str, state: bytes) -> str:
        blob = bytes([_TOKEN_VERSION]) + self._mac(customer_id, section, state) + state
        return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")

    def open(self, customer_id: str, section: str, token: str) -> bytes:
        refused = InvalidPageToken(
            "the page token is not valid for this customer and section (tokens are bound to both, and "
            "to the key of the server that issued them); start again from the first page"
        )
        if len(token) > _MAX_TOKEN_CHARS:
            raise refused
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, UnicodeEncodeError) as exc:
            raise refused from exc
        if len(blob) <= 1 + _MAC_BYTES or blob[0] != _TOKEN_VERSION:
            raise refused
        mac, state = blob[1 : 1 + _MAC_BYTES], blob[1 + _MAC_BYTES :]
        if not hmac.compare_digest(mac, self._mac(customer_id, section, state)):
            raise refused
        return state


def _framed(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(4, "big") + data


# -- driver errors --------------------------------------------------------------------------------


def _causes(exc: BaseException) -> list[BaseException]:
    """The errors behind an exception: each host's for NoHostAvailable, else the exception itself."""
    if isinstance(exc, NoHostAvailable):
        errors = list((exc.errors or {}).values())
        return [cause for error in errors for cause in _causes(error)] or [exc]
    return [exc]


def may_fall_back(exc: BaseException) -> bool:
    """True when fewer replicas might answer: the cluster is up but the requested consistency could
    not be met (replicas down or too slow). Not when no node answers at all."""
    return any(
        isinstance(c, Unavailable | ReadTimeout | ReadFailure | OperationTimedOut) for c in _causes(exc)
    )


# What the driver raises when a read fails; anything else is a bug and is never dressed up as an outage.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    DriverException,
    NoHostAvailable,
    ConnectionException,
    OSError,
)


def map_error(exc: BaseException, what: str) -> ViewClientError:
    """The client's exception for a driver error (one of DRIVER_ERRORS) raised while doing ``what``."""
    if isinstance(exc, ViewClientError):
        return exc
    causes = _causes(exc)
    if any(isinstance(c, AuthenticationFailed | Unauthorized) for c in causes):
        return ClientConfigurationError(
            f"{what}: the store refused the credentials ({exc}); check SCV_READ__USERNAME and the "
            "password (file), and that the role may SELECT the view's keyspace"
        )
    if isinstance(exc, InvalidRequest):
        message = str(exc)
        if "does not exist" in message or "unconfigured table" in message:
            return ClientConfigurationError(
                f"{what}: {message}; check the keyspace setting (SCV_STORE__KEYSPACE), or create the "
                "schema with `scv store migrate`"
            )
        return ClientConfigurationError(f"{what}: the store rejected the read: {message}")
    if any(isinstance(c, OperationTimedOut | ReadTimeout) for c in causes):
        return StoreTimeout(f"{what}: the store did not answer in time ({exc}); retry later")
    return StoreUnavailable(f"{what}: the store is unavailable ({exc}); retry later")
