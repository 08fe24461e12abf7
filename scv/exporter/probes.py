"""Can the replicators' dependencies be reached, and how fast do they answer?

    probes = Probes(settings.registry, settings.store, timeout_s=5)
    probes.read()     # [Probe('registry', up=True, seconds=0.004), Probe('store', ...)]

The same request a replicator makes, timed: the registry's Confluent-compatible API answers its
compatibility config, the store answers a CQL query on system.local. The CQL session is kept
between rounds (a new cluster connection costs more than the query) and rebuilt after a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from scv.config.settings import RegistrySettings, StoreSettings
from scv.exporter.facts import Probe

__all__ = ["Probes", "timed"]

log = structlog.get_logger(__name__)


def timed(dependency: str, action: Callable[[], object]) -> Probe:
    """Run ``action``; a Probe that is up when it returned, down with the error when it raised."""
    started = time.perf_counter()
    try:
        action()
    except Exception as exc:  # any failure of a dependency is "down", with its reason
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Probe(dependency, False, time.perf_counter() - started, message[:300])
    return Probe(dependency, True, time.perf_counter() - started)


class Probes:
    def __init__(self, registry: RegistrySettings, store: StoreSettings, timeout_s: float) -> None:
        self._registry = registry
        self._store = store
        self._timeout_s = timeout_s
        self._http = httpx.Client(timeout=timeout_s)
        self._cluster: Any = None
        self._session: Any = None

    def close(self) -> None:
        self._http.close()
        self._drop_session()

    def read(self) -> list[Probe]:
        return [timed("registry", self._ask_registry), timed("store", self._ask_store)]

    def _ask_registry(self) -> None:
        response = self._http.get(f"{self._registry.url}/config")
        if response.status_code != 200:
            raise RuntimeError(f"GET {self._registry.url}/config: HTTP {response.status_code}")

    def _ask_store(self) -> None:
        if self._session is None:
            self._connect()
        try:
            self._session.execute("SELECT release_version FROM system.local", timeout=self._timeout_s).one()
        except Exception:
            self._drop_session()
            raise

    def _connect(self) -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy

        store = self._store
        cluster = Cluster(
            store.contact_points,
            port=store.port,
            connect_timeout=self._timeout_s,
            control_connection_timeout=self._timeout_s,
            execution_profiles={
                EXEC_PROFILE_DEFAULT: ExecutionProfile(
                    load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=store.local_dc),
                    request_timeout=self._timeout_s,
                )
            },
            protocol_version=store.protocol_version,
        )
        try:
            self._session = cluster.connect()
        except Exception:
            cluster.shutdown()
            raise
        self._cluster = cluster

    def _drop_session(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
