"""The peer's freshness, measured end to end with probe rows: source commit -> row readable in the
peer's table.

    with FreshnessProbe(settings, table="crm_customer_emails", keyspace="peer_3f2a1c") as probe:
        run_pgbench_workload(settings, rate=1000, duration_s=60)
    probe.result().p99

Why probes: the connector exports no freshness of its own, and what it writes carries no apply time
(its write timestamp is the Kafka record's). So while the load runs, a probe row is inserted into
crm's ``customer_emails`` every ``interval_s`` (autocommit; the time the commit returned is its
commit time), and the peer's table is read by primary key every ``poll_s`` until each row is there.
Each probe is one sample of source commit -> applied, the span `scv consume`'s freshness histogram
measures for every change (there from the change's source commit timestamp), through the same
path: Debezium, Kafka, the sink. Differences to read the figures by: a sample is late by up to
``poll_s`` plus a read's round trip; there are ``1 / interval_s`` samples a second, not one per
change; each is an insert of a row of one table, not the workload's mix.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from cassandra.cluster import Session
from psycopg import Connection
from psycopg.rows import TupleRow

from bench.peer.exceptions import PeerError
from demo.connect import connect as connect_postgres
from scv.config.settings import Settings
from store.session import connect as connect_store

__all__ = ["PROBE_TABLE", "PROBE_TOPIC", "FreshnessProbe", "ProbeResult", "quantile"]

# crm's e-mails: a plain table keyed by one bigint, which the workload's own changes never touch
# under a probe's key (each probe inserts a new row).
PROBE_DATABASE = "crm"
PROBE_TOPIC = "crm.public.customer_emails"
PROBE_TABLE = "customer_emails"
# IN lists of at most this many keys per read of the peer's table.
_CHUNK = 100


def quantile(q: float, samples: list[float]) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank; nan for none)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class ProbeResult:
    sent: int
    seen: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, sent: int, samples: list[float]) -> ProbeResult:
        """Quantiles over every probe sent: one not seen by the end counts as slower than any seen
        (infinite), so a sink that fell behind shows as such instead of by its few early probes."""
        censored = samples + [math.inf] * (sent - len(samples))
        return cls(
            sent,
            len(samples),
            quantile(0.5, censored),
            quantile(0.9, censored),
            quantile(0.99, censored),
            max(censored) if censored else math.nan,
        )


class FreshnessProbe:
    """Inserts probe rows and times their arrival in the peer's table, in a thread, until closed;
    then waits up to ``settle_s`` for the rows still on their way (a row not seen by then counts
    as infinitely late: ProbeResult.of)."""

    def __init__(
        self,
        settings: Settings,
        *,
        keyspace: str,
        table: str,
        run_id: str,
        interval_s: float = 0.2,
        poll_s: float = 0.05,
        settle_s: float = 120.0,
    ) -> None:
        self._settings = settings
        self._keyspace, self._table, self._run_id = keyspace, table, run_id
        self._interval_s, self._poll_s, self._settle_s = interval_s, poll_s, settle_s
        self._committed: dict[int, float] = {}  # probe row id -> time its commit returned
        self._seen: dict[int, float] = {}
        self._sending = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="peer-freshness-probe", daemon=True)

    def __enter__(self) -> Self:
        self._sending.set()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._sending.clear()
        deadline = time.monotonic() + self._settle_s
        while time.monotonic() < deadline and len(self._seen) < len(self._committed) and self._error is None:
            time.sleep(self._poll_s)
        self._stop.set()
        self._thread.join(30)

    def result(self) -> ProbeResult:
        if self._error is not None:
            raise PeerError(f"the freshness probe failed: {self._error!r}") from self._error
        samples = [self._seen[i] - self._committed[i] for i in self._seen if i in self._committed]
        return ProbeResult.of(len(self._committed), samples)

    def delete_probe_rows(self) -> None:
        """Remove the probe rows from the source (they reach the topics as deletes, like any change)."""
        with connect_postgres(self._settings, PROBE_DATABASE) as conn:
            conn.execute(f"DELETE FROM {PROBE_TABLE} WHERE email LIKE %s", (f"{self._prefix}%",))

    @property
    def _prefix(self) -> str:
        return f"peer-probe-{self._run_id}-"

    def _run(self) -> None:
        try:
            cluster, session = connect_store(self._settings.store)
            try:
                with connect_postgres(self._settings, PROBE_DATABASE) as conn:
                    row = conn.execute("SELECT min(customer_id) FROM customers").fetchone()
                    if row is None or row[0] is None:
                        raise RuntimeError(f"{PROBE_DATABASE} has no customers to attach probe rows to")
                    self._loop(conn, session, int(row[0]))
            finally:
                cluster.shutdown()
        except BaseException as exc:  # reported by result(): a probe that died measured nothing
            self._error = exc

    def _loop(self, conn: Connection[TupleRow], session: Session, customer_id: int) -> None:
        select = session.prepare(
            f'SELECT email_id FROM "{self._keyspace}"."{self._table}" WHERE email_id IN ?'
        )
        next_send, number = time.monotonic(), 0
        while not self._stop.is_set():
            now = time.monotonic()
            if self._sending.is_set() and now >= next_send:
                number += 1
                inserted = conn.execute(
                    f"INSERT INTO {PROBE_TABLE} (customer_id, email, is_primary) "
                    "VALUES (%s, %s, false) RETURNING email_id",
                    (customer_id, f"{self._prefix}{number}@bench.invalid"),
                ).fetchone()
                assert inserted is not None
                self._committed[int(inserted[0])] = time.time()
                next_send = now + self._interval_s
            pending = [i for i in self._committed if i not in self._seen]
            for start in range(0, len(pending), _CHUNK):
                chunk = pending[start : start + _CHUNK]
                rows = session.execute(select, (chunk,))
                read_at = time.time()
                for found in rows:
                    self._seen.setdefault(int(found.email_id), read_at)
            time.sleep(self._poll_s)
