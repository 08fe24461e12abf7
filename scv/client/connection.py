"""The driver set up for reads: one Cluster, two execution profiles, four prepared statements.

    store = StoreConnection.open(settings)       # blocking: the async client runs it in a thread
    store.session.execute_async(store.bind_view("42"), execution_profile=READ)

Routing: token-aware over the local DC (the driver sends each read to a replica of the customer's
partition; on ScyllaDB the scylla-driver also picks the shard that owns it). Every statement is
marked idempotent, which is what allows retries on another replica and speculative execution.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, ExecutionProfile, ResponseFuture, Session
from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    RetryPolicy,
    TokenAwarePolicy,
)
from cassandra.query import BoundStatement, PreparedStatement, tuple_factory

from scv.client.composition import CompositionRules
from scv.client.core import DRIVER_ERRORS, PageTokens, Statements, map_error
from scv.client.exceptions import ClientConfigurationError
from scv.client.settings import ClientSettings

__all__ = ["FALLBACK", "READ", "StoreConnection"]

READ = "scv-read"
FALLBACK = "scv-read-fallback"
# Rows per round trip of a whole-view read (the driver's default): most views fit in one.
VIEW_FETCH_ROWS = 5000


class ReadRetryPolicy(RetryPolicy):  # type: ignore[misc]
    """Retry a read on the next replica, up to ``budget`` times, whatever went wrong with the first:
    reads are idempotent. Writes are never retried (this client does not write)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def _next(self, retry_num: int, consistency: Any) -> tuple[Any, Any]:
        if retry_num >= self.budget:
            return self.RETHROW, None
        return self.RETRY_NEXT_HOST, consistency

    def on_read_timeout(self, query: Any, consistency: Any, *args: Any, retry_num: int = 0, **kw: Any) -> Any:
        return self._next(retry_num, consistency)

    def on_unavailable(self, query: Any, consistency: Any, *args: Any, retry_num: int = 0, **kw: Any) -> Any:
        return self._next(retry_num, consistency)

    def on_request_error(
        self, query: Any, consistency: Any, *args: Any, retry_num: int = 0, **kw: Any
    ) -> Any:
        return self._next(retry_num, consistency)

    def on_write_timeout(self, *args: Any, **kwargs: Any) -> Any:
        return self.RETHROW, None


def _level(name: str) -> int:
    return int(ConsistencyLevel.name_to_value[name.upper()])


def _profile(settings: ClientSettings, consistency: str) -> ExecutionProfile:
    balancing: Any = DCAwareRoundRobinPolicy(local_dc=settings.local_dc)
    if settings.token_aware:
        balancing = TokenAwarePolicy(balancing)
    speculative = (
        ConstantSpeculativeExecutionPolicy(settings.speculative_delay_s, settings.speculative_attempts)
        if settings.speculative_attempts
        else None
    )
    return ExecutionProfile(
        load_balancing_policy=balancing,
        retry_policy=ReadRetryPolicy(settings.retry_budget),
        consistency_level=_level(consistency),
        request_timeout=settings.request_timeout_s,
        row_factory=tuple_factory,
        speculative_execution_policy=speculative,
    )


def _ssl_context(settings: ClientSettings) -> ssl.SSLContext | None:
    tls = settings.tls
    if tls is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ClientConfigurationError(f"TLS setup failed: {exc}; check the tls_* file settings") from exc
    context.check_hostname = tls.verify_hostname
    return context


def _connection_class(settings: ClientSettings) -> Any:
    if settings.reactor == "asyncio":
        from cassandra.io.asyncioreactor import AsyncioConnection

        return AsyncioConnection
    try:
        from cassandra.io.libevreactor import LibevConnection
    except ImportError:  # pragma: no cover - the wheel ships libev; the driver picks its default then
        return None
    return LibevConnection


# The sources' composition rules change only when a source is onboarded: a read re-reads them at
# most this often.
RULES_TTL_S = 30.0


@dataclass
class StoreConnection:
    settings: ClientSettings
    cluster: Cluster
    session: Session
    view: PreparedStatement
    section: PreparedStatement
    entity: PreparedStatement
    exists: PreparedStatement
    redirect: PreparedStatement
    registrations: PreparedStatement
    tokens: PageTokens
    # The composition rules, re-read from the registrations at most every RULES_TTL_S.
    rules: CompositionRules | None = None
    rules_read_at: float = 0.0

    @classmethod
    def open(cls, settings: ClientSettings) -> StoreConnection:
        """Connect and prepare (blocking). Raises StoreUnavailable or ClientConfigurationError."""
        settings = settings.with_random_page_key()
        tokens = PageTokens(settings.page_token_key)
        profiles = {READ: _profile(settings, settings.consistency)}
        if settings.fallback_consistency:
            profiles[FALLBACK] = _profile(settings, settings.fallback_consistency)
        auth = PlainTextAuthProvider(settings.username, settings.password) if settings.username else None
        options: dict[str, Any] = {}
        connection_class = _connection_class(settings)
        if connection_class is not None:
            options["connection_class"] = connection_class
        cluster = Cluster(
            contact_points=list(settings.contact_points),
            port=settings.port,
            execution_profiles=profiles,
            auth_provider=auth,
            ssl_context=_ssl_context(settings),
            protocol_version=settings.protocol_version,
            connect_timeout=settings.connect_timeout_s,
            control_connection_timeout=settings.connect_timeout_s,
            # Back within a second of a store outage, not after the driver's default 10 minutes.
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.2, max_delay=5.0),
            schema_metadata_enabled=settings.token_aware,
            token_metadata_enabled=settings.token_aware,
            **options,
        )
        what = f"connecting to the store at {list(settings.contact_points)} port {settings.port}"
        try:
            session = cluster.connect()
            statements = Statements(settings.keyspace)
            prepared = [
                session.prepare(text)
                for text in (
                    statements.view,
                    statements.section,
                    statements.entity,
                    statements.exists,
                    statements.redirect,
                    statements.registrations,
                )
            ]
        except DRIVER_ERRORS as exc:
            cluster.shutdown()
            raise map_error(exc, what) from exc
        for statement in prepared:
            statement.is_idempotent = True
        view, section, entity, exists, redirect, registrations = prepared
        return cls(settings, cluster, session, view, section, entity, exists, redirect, registrations, tokens)

    def close(self) -> None:
        self.cluster.shutdown()

    def profile(self, fallback: bool) -> str:
        return FALLBACK if fallback else READ

    @property
    def can_fall_back(self) -> bool:
        return bool(self.settings.fallback_consistency)

    def start(
        self, statement: BoundStatement, fallback: bool, paging_state: bytes | None = None
    ) -> ResponseFuture:
        return self.session.execute_async(
            statement, execution_profile=self.profile(fallback), paging_state=paging_state
        )

    def bind_view(self, customer_id: str) -> BoundStatement:
        bound = self.view.bind((customer_id,))
        bound.fetch_size = VIEW_FETCH_ROWS
        return bound

    def bind_section(self, customer_id: str, section: str, page_size: int | None) -> BoundStatement:
        bound = self.section.bind((customer_id, section))
        bound.fetch_size = page_size or self.settings.page_size
        return bound

    def bind_entity(
        self, customer_id: str, section: str, source: str, table: str, entity_id: str
    ) -> BoundStatement:
        return self.entity.bind((customer_id, section, source, table, entity_id))

    def bind_exists(self, customer_id: str) -> BoundStatement:
        return self.exists.bind((customer_id,))

    def bind_redirect(self, customer_id: str) -> BoundStatement:
        return self.redirect.bind((customer_id,))

    def bind_registrations(self) -> BoundStatement:
        return self.registrations.bind(())

    def rules_due(self) -> bool:
        return self.rules is None or time.monotonic() - self.rules_read_at > RULES_TTL_S

    def keep_rules(self, rules: CompositionRules) -> CompositionRules:
        self.rules, self.rules_read_at = rules, time.monotonic()
        return rules
