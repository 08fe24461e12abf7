"""Open a CQL session with the project's defaults.

    with open_session(settings.store) as session:
        session.execute("SELECT release_version FROM system.local")

The scylla-driver is shard-aware by default on ScyllaDB (each request goes to the core owning its
token) and speaks the plain protocol to Cassandra, so the same code gets Scylla's gains for free.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

from scv.settings import StoreSettings
from store.exceptions import StoreUnavailable

__all__ = ["TRANSIENT_ERRORS", "connect", "open_session"]


def connect(settings: StoreSettings) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(
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


# What a store outage looks like to the driver; such errors are retried by callers, never dropped.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (DriverException, NoHostAvailable)
