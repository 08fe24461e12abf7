"""Open a CQL session with the project's defaults.

    with open_session(settings.store) as session:
        session.execute("SELECT release_version FROM system.local")

The scylla-driver is shard-aware by default on ScyllaDB (each request goes to the core owning its
token) and speaks the plain protocol to Cassandra, so the same code gets Scylla's gains for free.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cassandra import ConsistencyLevel, DriverException, RequestValidationException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import named_tuple_factory

from scv.config.settings import StoreSettings
from store.exceptions import StoreUnavailable

__all__ = ["PERMANENT_ERRORS", "TRANSIENT_ERRORS", "connect", "open_session"]


@functools.lru_cache(maxsize=512)
def _row_class(columns: tuple[str, ...]) -> Any:
    return namedtuple("Row", columns)


def cached_named_tuple_factory(columns: list[str], rows: list[tuple[Any, ...]]) -> list[Any]:
    """The driver's named-tuple rows without its cost: the stock factory builds a new namedtuple
    *class* for every result set, which profiling showed as the replicator's largest single cost
    (one index read per change). Classes are cached per column list."""
    if not all(column.isidentifier() for column in columns):
        return named_tuple_factory(columns, rows)  # type: ignore[no-any-return]
    row_class = _row_class(tuple(columns))
    return [row_class._make(row) for row in rows]


def connect(settings: StoreSettings) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(
        row_factory=cached_named_tuple_factory,
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[settings.consistency.upper()],
        request_timeout=settings.request_timeout_s,
    )
    try:
        from cassandra.io.libevreactor import LibevConnection

        connection_class: type | None = LibevConnection
    except ImportError:  # pragma: no cover - the wheel ships libev; asyncore fallback otherwise
        connection_class = None
    kwargs = {"connection_class": connection_class} if connection_class else {}
    cluster = Cluster(
        contact_points=settings.contact_points,
        port=settings.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        # The driver's default waits up to 10 minutes between reconnection attempts; after a store
        # outage the replicator should resume within seconds.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        # v4, not v5: ScyllaDB speaks v4, and the Python driver frames v5 segments (CRC24/CRC32) in
        # pure Python, which costs the replicator ~5% of its CPU for nothing on Cassandra.
        protocol_version=settings.protocol_version,
        **kwargs,
    )
    try:
        session = cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        raise StoreUnavailable(
            f"no CQL node answers at {settings.contact_points} port {settings.port}: {exc}; "
            f"start the local stack with `scv stack up` or set SCV_STORE__CONTACT_POINTS"
        ) from exc
    return cluster, session


@contextmanager
def open_session(settings: StoreSettings) -> Iterator[Session]:
    cluster, session = connect(settings)
    try:
        yield session
    finally:
        cluster.shutdown()


# What the store says about a request it will never accept: InvalidRequest ("Key may not be empty",
# "Key length of 70000 is longer than maximum of 65535", "Batch too large"), and its kin under
# RequestValidationException (syntax, configuration, authorization). Retrying them stalls every
# partition behind them forever; callers isolate the write instead (consumer/isolation.py).
PERMANENT_ERRORS: tuple[type[Exception], ...] = (RequestValidationException,)

# What a store outage looks like to the driver (every other driver error: timeouts, unavailable
# replicas, lost connections); such errors are retried by callers, never dropped. Test
# PERMANENT_ERRORS first: they are DriverExceptions too.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (DriverException, NoHostAvailable)
