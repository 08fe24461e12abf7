"""The asyncio client: the same reads as CustomerViewClient, awaited.

    async with AsyncCustomerViewClient(ClientSettings(keyspace="scv")) as client:
        view = await client.get_view("42")
        views = await client.get_many(["42", "43", "44"])

The driver has no asyncio API: each request's ResponseFuture calls back on the driver's I/O thread,
and the callbacks hand the rows to the caller's event loop (``call_soon_threadsafe``), so the loop
never blocks on the store. Connecting and preparing do block, and run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from cassandra.cluster import ResponseFuture, ResultSet
from cassandra.query import BoundStatement

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

__all__ = ["AsyncCustomerViewClient"]

_Page = tuple[list[Row], bytes | None]


def _settle(waiter: asyncio.Future[_Page], outcome: _Page | BaseException) -> None:
    if waiter.done():  # cancelled by the caller meanwhile
        return
    if isinstance(outcome, BaseException):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


def _awaitable(future: ResponseFuture, loop: asyncio.AbstractEventLoop) -> asyncio.Future[_Page]:
    """An asyncio future resolved, on ``loop``, with the first page of ``future`` and its paging state."""
    waiter: asyncio.Future[_Page] = loop.create_future()

    def deliver(outcome: _Page | BaseException) -> None:
        # RuntimeError: the loop was closed while the request was in flight; nobody waits for it.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, waiter, outcome)

    def on_rows(rows: Any) -> None:
        result = ResultSet(future, rows)
        deliver((list(result.current_rows), result.paging_state))

    future.add_callbacks(on_rows, deliver)
    return waiter


class AsyncCustomerViewClient:
    def __init__(self, settings: ClientSettings | None = None) -> None:
        """Nothing happens until ``await client.connect()`` (or ``async with``)."""
        self._settings = settings or ClientSettings()
        self._store: StoreConnection | None = None

    @classmethod
    def from_env(cls) -> AsyncCustomerViewClient:
        return cls(ClientSettings.from_env())

    @property
    def settings(self) -> ClientSettings:
        return self._store.settings if self._store else self._settings

    async def connect(self) -> None:
        """Connect and prepare, in a worker thread. Raises StoreUnavailable, ClientConfigurationError."""
        if self._store is None:
            self._store = await asyncio.to_thread(StoreConnection.open, self._settings)

    async def aclose(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await asyncio.to_thread(store.close)

    async def __aenter__(self) -> AsyncCustomerViewClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def _connected(self) -> StoreConnection:
        if self._store is None:
            raise RuntimeError("AsyncCustomerViewClient is not connected: `await client.connect()` first")
        return self._store

    # -- reads (twins of CustomerViewClient's; see there) -------------------------------------------

    async def get_view(self, customer_id: str, *, include_ended: bool = True) -> CustomerView:
        if not storable(customer_id):
            raise CustomerNotFound(customer_id)
        store = self._connected
        current, asked = customer_id, None
        for _hop in range(MAX_REDIRECTS):
            rows, stale = await self._all_pages(store.bind_view(current), f"reading customer {current!r}")
            if rows:
                break
            found, _state, _stale = await self._page(
                store.bind_redirect(current), f"reading the merges of customer {current!r}", None
            )
            survivor = str(found[0][0]) if found and found[0][0] else None
            if survivor is None or survivor == current:
                break
            current, asked = survivor, customer_id
        if store.rules_due():
            registrations, _ = await self._all_pages(
                store.bind_registrations(), "reading the sources' registrations"
            )
            store.keep_rules(composition_rules(row[0] for row in registrations))
        return build_view(
            current,
            rows,
            datetime.now(UTC),
            stale,
            include_ended=include_ended,
            redirected_from=asked,
            rules=store.rules,
        )

    async def get_section(
        self, customer_id: str, section: str, page_token: str | None = None, page_size: int | None = None
    ) -> SectionPage:
        if not storable(customer_id):
            raise CustomerNotFound(customer_id)
        store = self._connected
        state = store.tokens.open(customer_id, section, page_token) if page_token else None
        what = f"reading section {section!r} of customer {customer_id!r}"
        rows, next_state, stale = await self._page(
            store.bind_section(customer_id, section, page_size), what, state
        )
        if not rows and state is None and not await self._exists(customer_id):
            raise CustomerNotFound(customer_id)
        token = store.tokens.seal(customer_id, section, next_state) if next_state else None
        return build_page(customer_id, section, rows, token, datetime.now(UTC), stale)

    async def get_entity(
        self, customer_id: str, section: str, source: str, table: str, entity_id: str
    ) -> EntityView:
        what = f"{section} {source}/{table}#{entity_id}"
        if not storable(customer_id):
            raise EntityNotFound(customer_id, what)
        bound = self._connected.bind_entity(customer_id, section, source, table, entity_id)
        rows, _state, _stale = await self._page(bound, f"reading {what} of customer {customer_id!r}", None)
        if not rows:
            raise EntityNotFound(customer_id, what)
        return build_entity(customer_id, rows[0])

    async def get_many(self, customer_ids: Iterable[str]) -> dict[str, CustomerView | None]:
        ids = list(dict.fromkeys(customer_ids))
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def one(customer_id: str) -> CustomerView | None:
            if not storable(customer_id):
                return None
            async with limit:
                rows, stale = await self._all_pages(
                    self._connected.bind_view(customer_id), f"reading customer {customer_id!r}"
                )
            return build_view(customer_id, rows, datetime.now(UTC), stale) if rows else None

        views = await asyncio.gather(*(one(cid) for cid in ids))
        return dict(zip(ids, views, strict=True))

    async def ping(self) -> None:
        await self._page(self._connected.bind_exists("\x00scv-ping"), "checking the store", None)

    # -- I/O --------------------------------------------------------------------------------------

    async def _exists(self, customer_id: str) -> bool:
        rows, _state, _stale = await self._page(
            self._connected.bind_exists(customer_id), f"reading customer {customer_id!r}", None
        )
        return bool(rows)

    async def _fetch(self, bound: BoundStatement, state: bytes | None, fallback: bool) -> _Page:
        future = self._connected.start(bound, fallback, state)
        return await _awaitable(future, asyncio.get_running_loop())

    async def _page(
        self, bound: BoundStatement, what: str, state: bytes | None, fallback: bool = False
    ) -> tuple[list[Row], bytes | None, bool]:
        try:
            rows, next_state = await self._fetch(bound, state, fallback)
            return rows, next_state, fallback
        except DRIVER_ERRORS as exc:
            if fallback or not (self._connected.can_fall_back and may_fall_back(exc)):
                raise map_error(exc, what) from exc
        try:
            rows, next_state = await self._fetch(bound, state, fallback=True)
        except DRIVER_ERRORS as exc:
            raise map_error(exc, what) from exc
        return rows, next_state, True

    async def _all_pages(self, bound: BoundStatement, what: str) -> tuple[list[Row], bool]:
        rows: list[Row] = []
        state: bytes | None = None
        stale = False
        while True:
            page, state, page_stale = await self._page(bound, what, state, stale)
            rows += page
            stale = stale or page_stale
            if state is None:
                return rows, stale
