"""`scv exporter`: the pipeline seen from outside every replicator, served to Prometheus.

    Exporter(get_settings()).run()    # until SIGTERM/SIGINT

Three collector threads, each on its own round every ``poll_interval_s``, so a dependency that hangs
stalls only its own figures (lag keeps being computed while Connect or a source database does not
answer, which is when it matters):
1. kafka: consumer groups, their committed offsets, end offsets, lag in records and seconds, the
   heartbeat topics' ages, asked from a child process (a librdkafka abort ends it, not the exporter);
   rewrites the replicator targets file for Prometheus when members change;
2. sources: Kafka Connect's connectors and tasks, each source's slot as its CDC user sees it;
3. probes: the schema registry and the store, timed.
Each round replaces its part of ``PipelineState`` whole; scrapes read whatever is newest.

A process of its own rather than a thread of the replicator: it has to keep measuring when every
replicator is stuck or dead, and one exporter serves any number of replicators and groups.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

import structlog
from prometheus_client import REGISTRY, start_http_server

from scv.config.settings import Settings
from scv.exporter.discovery import ReplicatorTargets
from scv.exporter.exceptions import ExporterError
from scv.exporter.facts import Probe, SourceFacts
from scv.exporter.kafka_process import KafkaLagProcess, kafka_lag
from scv.exporter.metrics import ROUND_ERRORS, PipelineCollector, PipelineState
from scv.exporter.probes import Probes
from scv.exporter.sources import SourceReader, SourceReading
from scv.exporter.timeline import OffsetTimeline

__all__ = ["Exporter"]

log = structlog.get_logger(__name__)


class Exporter:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = settings.exporter
        self.state = PipelineState(cluster_name=self._config.cluster_name)
        self._stop = threading.Event()
        timeout = self._config.timeout_s
        # In a child process: librdkafka can abort during a broker restart (kafka_process.py).
        self._lag = KafkaLagProcess(
            functools.partial(
                kafka_lag,
                settings.kafka.bootstrap_servers,
                timeout,
                self._config.groups,
                self._config.lookup_table_size,
            ),
            # A round asks a handful of batched questions, each bounded by the timeout: past this
            # the child is stuck, not slow.
            round_deadline_s=timeout * 10,
        )
        self._sources = SourceReader(settings.connect, timeout_s=timeout)
        self._probes = Probes(settings.registry, settings.store, timeout_s=timeout)
        target_file = self._config.replicator_targets_file
        self._targets = ReplicatorTargets(target_file) if target_file else None
        self._wal: dict[str, OffsetTimeline] = {}
        # The collector threads each replace their own fields; the two shared maps need a lock.
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------

    def request_stop(self, *_args: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("exporter.shutdown_requested", signal=signal.Signals(signum).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        host, port = self._config.host, self._config.port
        REGISTRY.register(PipelineCollector(self.state))
        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            raise ExporterError(
                f"cannot serve on {host}:{port}: {exc.strerror}. Another exporter (or program) holds the "
                f"port: stop it, or set SCV_EXPORTER__PORT"
            ) from exc
        log.info("exporter.started", address=f"{host}:{port}", poll_interval_s=self._config.poll_interval_s)
        threads = [
            threading.Thread(target=self._every, args=(name, body), name=f"scv-exporter-{name}", daemon=True)
            for name, body in (
                ("kafka", self.kafka_round),
                ("sources", self.sources_round),
                ("probes", self.probes_round),
            )
        ]
        for thread in threads:
            thread.start()
        try:
            self._stop.wait()
        finally:
            for thread in threads:
                thread.join(timeout=self._config.timeout_s * 3)
            self._lag.close()
            self._sources.close()
            self._probes.close()
            log.info("exporter.stopped")

    def _every(self, name: str, body: Callable[[], None]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                body()
            except Exception as exc:  # one failed round is reported and retried next round
                ROUND_ERRORS.labels(name).inc()
                log.warning(
                    "exporter.round_failed",
                    collector=name,
                    error=str(exc).splitlines()[0] if str(exc) else repr(exc),
                )
            elapsed = time.monotonic() - started
            with self._lock:
                self.state.rounds = {**self.state.rounds, name: (elapsed, time.time())}
            self._stop.wait(max(0.0, self._config.poll_interval_s - elapsed))

    # -- the three rounds --------------------------------------------------------------------------

    def kafka_round(self) -> None:
        started = time.perf_counter()
        heartbeat_topics = [s.heartbeat_topic for s in self.state.sources]
        try:
            groups, beats = self._lag.read(heartbeat_topics, now=time.time())
        except Exception as exc:
            self._record_probe(Probe("kafka", False, time.perf_counter() - started, str(exc)[:300]))
            raise
        self._record_probe(Probe("kafka", True, time.perf_counter() - started))
        self.state.groups = tuple(groups)
        self.state.heartbeat_ages = beats.ages
        if self._targets is not None and self._targets.write(groups):
            log.info(
                "exporter.replicator_targets_written",
                targets=sum(len(g.replicator_endpoints) for g in groups),
            )

    def sources_round(self) -> None:
        started = time.perf_counter()
        try:
            readings = self._sources.read()
        except Exception as exc:
            self._record_probe(Probe("connect", False, time.perf_counter() - started, str(exc)[:300]))
            raise
        self._record_probe(Probe("connect", True, time.perf_counter() - started))
        now = time.time()
        self.state.sources = tuple(self._with_flush_age(r, now) for r in readings)
        for gone in set(self._wal) - {r.facts.source for r in readings}:
            del self._wal[gone]

    def probes_round(self) -> None:
        for probe in self._probes.read():
            self._record_probe(probe)

    def _with_flush_age(self, reading: SourceReading, now: float) -> SourceFacts:
        """The slot's confirmed_flush_lsn age: WAL positions over time, the same estimate as lag."""
        facts, wal = reading.facts, reading.wal
        if wal is None or facts.slot is None or wal.confirmed_flush is None:
            return facts
        timeline = self._wal.setdefault(facts.source, OffsetTimeline(self._config.lookup_table_size))
        timeline.observe(wal.current, now)
        age = timeline.lag_seconds(wal.confirmed_flush, now)
        return replace(facts, slot=replace(facts.slot, confirmed_flush_age_s=age))

    def _record_probe(self, probe: Probe) -> None:
        with self._lock:
            self.state.probes = {**self.state.probes, probe.dependency: probe}
