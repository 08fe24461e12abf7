"""The read API's routes.

    app = create_app(ApiConfig.from_settings(get_settings()))    # an ASGI app (uvicorn: scv/api/server.py)

    GET  /customers/{customer_id}                      the whole view (sections the token may read)
    GET  /customers/{customer_id}/{section}            one section, paged (page_token, page_size)
    GET  /customers/{customer_id}/{section}/{source}/{table}/{entity_id}     one entity
    POST /bulk/customers        {"ids": [...]}         many views at once
    GET  /healthz  /readyz  /metrics  /openapi.json  /docs

Views carry ``ETag`` (their version: a digest of what the view last applied, so any write or delete
changes it) and answer ``If-None-Match`` with 304; ``SCV-View-Age`` is the seconds since the view
last applied a change, ``Last-Modified`` that moment, ``SCV-Possibly-Stale: true`` marks an answer
from fewer replicas than asked for. Errors are JSON ``{"status", "error", "detail"}``: 400 bad
input or page token, 401 no/unknown token, 403 section not allowed to the token, 404 unknown
customer/entity, 503 store unavailable (with Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scv.api.auth import Principal, TokenTable
from scv.api.config import client_settings
from scv.api.metrics import REQUEST_SECONDS, REQUESTS, STALE_ANSWERS, STORE_ERRORS, VIEW_AGE
from scv.api.models import BulkRequest, BulkResponse, Entity, ErrorResponse, Health, Page, View
from scv.client import (
    AsyncCustomerViewClient,
    ClientConfigurationError,
    ClientSettings,
    CustomerNotFound,
    CustomerView,
    InvalidPageToken,
    NotFound,
    StoreTimeout,
    StoreUnavailable,
    ViewClientError,
)
from scv.config.settings import Settings

__all__ = ["ApiConfig", "ApiError", "create_app"]


@dataclass(frozen=True)
class ApiConfig:
    client: ClientSettings
    tokens: TokenTable
    bulk_max_ids: int = 100
    retry_after_s: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        api = settings.api
        return cls(
            client_settings(settings), TokenTable.from_settings(api), api.bulk_max_ids, api.retry_after_s
        )


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


class ViewStore:
    """The process's read client: connected at startup when the store answers, else by the next
    request (at most one attempt a second, so an outage does not become a connection storm). Once
    connected, the driver reconnects by itself: requests meanwhile fail fast with 503."""

    _RETRY_S = 1.0

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._client: AsyncCustomerViewClient | None = None
        self._lock = asyncio.Lock()
        self._attempted = 0.0
        self._error: ViewClientError = StoreUnavailable("the store has not been reached yet")

    async def client(self) -> AsyncCustomerViewClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                if time.monotonic() - self._attempted < self._RETRY_S:
                    raise self._error
                self._attempted = time.monotonic()
                candidate = AsyncCustomerViewClient(self._settings)
                try:
                    await candidate.connect()
                except ViewClientError as exc:
                    self._error = exc
                    raise
                self._client = candidate
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


# -- responses ----------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits inside a JSON document
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"status": status, "error": error, "detail": detail}, status, headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def _freshness(last_applied: datetime | None, stale: bool, now: datetime) -> dict[str, str]:
    headers: dict[str, str] = {}
    if last_applied is not None:
        age = max(0.0, (now - last_applied).total_seconds())
        headers["SCV-View-Age"] = f"{age:.3f}"
        headers["Last-Modified"] = format_datetime(last_applied, usegmt=True)
        VIEW_AGE.observe(age)
    if stale:
        headers["SCV-Possibly-Stale"] = "true"
        STALE_ANSWERS.inc()
    return headers


def _conditional(request: Request, version: str, headers: dict[str, str], body: Any) -> Response:
    etag = f'"{version}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", **headers}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return _json(body, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed request or page token.",
        401: "Missing or unknown bearer token.",
        403: "The token may not read this section.",
        404: "Unknown customer or entity (or none of the sections the token may read).",
        503: "The store cannot answer now; retry after Retry-After seconds.",
    }.items()
}
_CACHED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match holds the current ETag."}
}


class _Metrics:
    """Pure ASGI middleware (no per-request task, unlike BaseHTTPMiddleware): counts and times every
    request by route template and status."""

    _METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in self._METHODS else "other"
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)


_bearer = HTTPBearer(auto_error=False, description="A token from api.tokens / api.tokens_file.")


async def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    config: ApiConfig = request.app.state.config
    found = config.tokens.authenticate(credentials.credentials if credentials else None)
    if found is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
            {"WWW-Authenticate": "Bearer"},
        )
    return found


Caller = Annotated[Principal, Depends(_principal)]


def create_app(config: ApiConfig) -> FastAPI:
    store = ViewStore(config.client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with suppress(ViewClientError):  # not fatal: readiness says so, and requests retry
            await store.client()
        yield
        await store.close()

    app = FastAPI(
        title="Single Customer View — read API",
        version="1",
        description=(__doc__ or "").split("\n\n", 1)[1],
        lifespan=lifespan,
    )
    app.state.config = config
    app.add_middleware(_Metrics)
    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(ViewClientError)
    async def client_error(_request: Request, exc: ViewClientError) -> Response:
        if isinstance(exc, NotFound):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, InvalidPageToken):
            return _error(400, "invalid_page_token", str(exc))
        if isinstance(exc, StoreUnavailable | ClientConfigurationError):
            kind = "timeout" if isinstance(exc, StoreTimeout) else "unavailable"
            STORE_ERRORS.labels(
                kind if not isinstance(exc, ClientConfigurationError) else "configuration"
            ).inc()
            return _error(503, f"store_{kind}", str(exc), {"Retry-After": str(config.retry_after_s)})
        return _error(500, "view_unreadable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _error(400, "bad_request", problems or "malformed request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), headers)

    # -- reads --------------------------------------------------------------------------------

    def restricted(view: CustomerView, caller: Principal) -> CustomerView:
        if caller.sections is None:
            return view
        view = view.restricted_to(caller.visible(view.sections))
        if not view.sections:
            raise CustomerNotFound(view.customer_id)
        return view

    @app.get(
        "/customers/{customer_id}",
        response_model=None,
        responses={200: {"model": View}, **_CACHED, **_ERRORS},
        summary="A customer's whole view",
    )
    async def get_customer(customer_id: str, request: Request, caller: Caller) -> Response:
        client = await store.client()
        view = restricted(await client.get_view(customer_id), caller)
        headers = _freshness(view.last_applied, view.possibly_stale, datetime.now(UTC))
        return _conditional(request, view.version, headers, view.to_json())

    @app.get(
        "/customers/{customer_id}/{section}",
        response_model=None,
        responses={200: {"model": Page}, **_CACHED, **_ERRORS},
        summary="One section of a customer's view, a page at a time",
    )
    async def get_section(
        customer_id: str,
        section: str,
        request: Request,
        caller: Caller,
        page_token: Annotated[str | None, Query(max_length=4096, description="From next_page_token.")] = None,
        page_size: Annotated[int | None, Query(ge=1, le=1000, description="Entities per page.")] = None,
    ) -> Response:
        if not caller.may_read(section):
            raise ApiError(403, "forbidden", f"the token of {caller.name} may not read section {section!r}")
        client = await store.client()
        page = await client.get_section(customer_id, section, page_token or None, page_size)
        last = max((entity.applied_ts for entity in page.entities), default=None)
        headers = _freshness(last, page.possibly_stale, datetime.now(UTC))
        return _conditional(request, page.version, headers, page.to_json())

    @app.get(
        "/customers/{customer_id}/{section}/{source}/{table}/{entity_id}",
        response_model=None,
        responses={200: {"model": Entity}, **_ERRORS},
        summary="One entity of a customer's view",
    )
    async def get_entity(
        customer_id: str, section: str, source: str, table: str, entity_id: str, caller: Caller
    ) -> Response:
        if not caller.may_read(section):
            raise ApiError(403, "forbidden", f"the token of {caller.name} may not read section {section!r}")
        client = await store.client()
        entity = await client.get_entity(customer_id, section, source, table, entity_id)
        return _json(entity.to_json(), headers=_freshness(entity.applied_ts, False, datetime.now(UTC)))

    @app.post(
        "/bulk/customers",
        response_model=None,
        responses={200: {"model": BulkResponse}, **_ERRORS},
        summary="Many customers' views at once",
    )
    async def bulk(request: BulkRequest, caller: Caller) -> Response:
        if len(request.ids) > config.bulk_max_ids:
            raise ApiError(
                400, "bad_request", f"at most {config.bulk_max_ids} ids per request, got {len(request.ids)}"
            )
        client = await store.client()
        found = await client.get_many(request.ids)
        customers: dict[str, Any] = {}
        missing: list[str] = []
        stale: list[str] = []
        for customer_id, whole in found.items():
            view = whole
            if view is not None and caller.sections is not None:
                view = view.restricted_to(caller.visible(view.sections))
            if view is None or not view.sections:
                missing.append(customer_id)
                continue
            customers[customer_id] = view.to_json()
            if view.possibly_stale:
                stale.append(customer_id)
        return _json({"customers": customers, "missing": missing, "possibly_stale": stale})

    # -- operations ---------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        responses={503: _ERRORS[503]},
        summary="Readiness: the store answers a read",
    )
    async def readyz() -> Health:
        client = await store.client()
        await client.ping()
        return Health(status="ready")

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
