"""The blocking client.

    with CustomerViewClient(ClientSettings(keyspace="scv")) as client:
        view = client.get_view("42")
        page = client.get_section("42", "interaction", page_size=100)
        more = client.get_section("42", "interaction", page_token=page.next_page_token)

Thread-safe: one client (one connection pool) serves a whole process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from types import TracebackType

from cassandra.query import BoundStatement

from scv.client.composition import CompositionRules
from scv.client.connection import StoreConnection
from scv.client.core import (
    DRIVER_ERRORS,
    MAX_REDIRECTS,
    Row,
    build_entity,
    build_page,
    build_view,
    composition_rules,
    map_error,
    may_fall_back,
    storable,
)
from scv.client.exceptions import CustomerNotFound, EntityNotFound
from scv.client.models import CustomerView, EntityView, SectionPage
from scv.client.settings import ClientSettings

__all__ = ["CustomerViewClient"]


class CustomerViewClient:
    def __init__(self, settings: ClientSettings | None = None) -> None:
        """Connect to the store (blocking). Raises StoreUnavailable or ClientConfigurationError."""
        self._store = StoreConnection.open(settings or ClientSettings())

    @classmethod
    def from_env(cls) -> CustomerViewClient:
        """A client configured by the service's variables (ClientSettings.from_env)."""
        return cls(ClientSettings.from_env())

    @property
    def settings(self) -> ClientSettings:
        return self._store.settings

    def __enter__(self) -> CustomerViewClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    # -- reads ------------------------------------------------------------------------------------

    def get_view(self, customer_id: str, *, include_ended: bool = True) -> CustomerView:
        """The customer's whole view. Raises CustomerNotFound, StoreUnavailable, StoreTimeout.

        A customer the CRM merged into another answers with the survivor's view, marked
        ``redirected_from``. ``include_ended=False`` leaves out entities the source deleted but the
        view keeps as history."""
        if not storable(customer_id):
            raise CustomerNotFound(customer_id)
        current, asked = customer_id, None
        for _hop in range(MAX_REDIRECTS):
            what = f"reading customer {current!r}"
            rows, stale = self._all_pages(self._store.bind_view(current), what)
            if rows:
                break
            survivor = self._survivor(current)
            if survivor is None or survivor == current:
                break
            current, asked = survivor, customer_id
        return build_view(
            current,
            rows,
            datetime.now(UTC),
            stale,
            include_ended=include_ended,
            redirected_from=asked,
            rules=self._rules(),
        )

    def _survivor(self, customer_id: str) -> str | None:
        rows, _state, _stale = self._page(
            self._store.bind_redirect(customer_id), f"reading the merges of customer {customer_id!r}", None
        )
        return str(rows[0][0]) if rows and rows[0][0] else None

    def _rules(self) -> CompositionRules | None:
        store = self._store
        if store.rules_due():
            rows, _stale = self._all_pages(store.bind_registrations(), "reading the sources' registrations")
            store.keep_rules(composition_rules(row[0] for row in rows))
        return store.rules

    def get_section(
        self, customer_id: str, section: str, page_token: str | None = None, page_size: int | None = None
    ) -> SectionPage:
        """One page of one section (``page_size`` entities, default ``settings.page_size``). An empty
        first page of a customer that has other sections is an empty page; of an unknown customer,
        CustomerNotFound. Raises InvalidPageToken for a token not issued for this customer/section."""
        if not storable(customer_id):
            raise CustomerNotFound(customer_id)
        store = self._store
        state = store.tokens.open(customer_id, section, page_token) if page_token else None
        what = f"reading section {section!r} of customer {customer_id!r}"
        rows, next_state, stale = self._page(store.bind_section(customer_id, section, page_size), what, state)
        if not rows and state is None and not self._exists(customer_id):
            raise CustomerNotFound(customer_id)
        token = store.tokens.seal(customer_id, section, next_state) if next_state else None
        return build_page(customer_id, section, rows, token, datetime.now(UTC), stale)

    def iter_section(
        self, customer_id: str, section: str, page_size: int | None = None
    ) -> Iterator[EntityView]:
        """Every entity of one section, page after page."""
        token: str | None = None
        while True:
            page = self.get_section(customer_id, section, token, page_size)
            yield from page.entities
            if page.next_page_token is None:
                return
            token = page.next_page_token

    def get_entity(
        self, customer_id: str, section: str, source: str, table: str, entity_id: str
    ) -> EntityView:
        """One entity, by its place in the view. Raises EntityNotFound."""
        what = f"{section} {source}/{table}#{entity_id}"
        if not storable(customer_id):
            raise EntityNotFound(customer_id, what)
        bound = self._store.bind_entity(customer_id, section, source, table, entity_id)
        rows, _state, _stale = self._page(bound, f"reading {what} of customer {customer_id!r}", None)
        if not rows:
            raise EntityNotFound(customer_id, what)
        return build_entity(customer_id, rows[0])

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, CustomerView | None]:
        """Many customers' views, ``settings.concurrency`` partitions in flight at a time; None for
        an unknown customer. Raises StoreUnavailable/StoreTimeout if any read fails."""
        ids = list(dict.fromkeys(customer_ids))
        store = self._store
        found: dict[str, CustomerView | None] = dict.fromkeys(ids)
        readable = [cid for cid in ids if storable(cid)]
        window = store.settings.concurrency
        for start in range(0, len(readable), window):
            chunk = readable[start : start + window]
            futures = [(cid, store.start(store.bind_view(cid), fallback=False)) for cid in chunk]
            for cid, future in futures:
                what = f"reading customer {cid!r}"
                try:
                    result = future.result()
                    rows: list[Row] = list(result.current_rows)
                    stale = False
                    if result.paging_state is not None:
                        more, stale = self._all_pages(store.bind_view(cid), what, result.paging_state)
                        rows += more
                except DRIVER_ERRORS as exc:
                    if not (store.can_fall_back and may_fall_back(exc)):
                        raise map_error(exc, what) from exc
                    rows, stale = self._all_pages(store.bind_view(cid), what, fallback=True)
                found[cid] = build_view(cid, rows, datetime.now(UTC), stale) if rows else None
        return found

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a read of the view table now."""
        self._page(self._store.bind_exists("\x00scv-ping"), "checking the store", None)

    # -- I/O --------------------------------------------------------------------------------------

    def _exists(self, customer_id: str) -> bool:
        rows, _state, _stale = self._page(
            self._store.bind_exists(customer_id), f"reading customer {customer_id!r}", None
        )
        return bool(rows)

    def _fetch(
        self, bound: BoundStatement, state: bytes | None, fallback: bool
    ) -> tuple[list[Row], bytes | None]:
        result = self._store.start(bound, fallback, state).result()
        return list(result.current_rows), result.paging_state

    def _page(
        self, bound: BoundStatement, what: str, state: bytes | None, fallback: bool = False
    ) -> tuple[list[Row], bytes | None, bool]:
        """One page at the requested consistency, else (when allowed) at the fallback one."""
        try:
            rows, next_state = self._fetch(bound, state, fallback)
            return rows, next_state, fallback
        except DRIVER_ERRORS as exc:
            if fallback or not (self._store.can_fall_back and may_fall_back(exc)):
                raise map_error(exc, what) from exc
        try:
            rows, next_state = self._fetch(bound, state, fallback=True)
        except DRIVER_ERRORS as exc:
            raise map_error(exc, what) from exc
        return rows, next_state, True

    def _all_pages(
        self, bound: BoundStatement, what: str, state: bytes | None = None, fallback: bool = False
    ) -> tuple[list[Row], bool]:
        rows: list[Row] = []
        stale = fallback
        while True:
            page, state, page_stale = self._page(bound, what, state, fallback)
            rows += page
            stale = stale or page_stale
            if state is None:
                return rows, stale
