"""The stack as a whole: up, down, status. The CLI and the test fixture both use this API.

    stack = Stack(get_settings())
    stack.up()                         # no-op when every service already answers
    [s.name for s in stack.status() if not s.healthy]
    stack.down()                       # stops only what `up` started

`up` works in this order:
1. check every service; if all answer, return (a second `up` costs one round of health checks);
2. install missing artifacts (apt, then Maven bundles; cached, so a warm `up` downloads nothing);
3. start services in parallel, each once the services it depends on answer (PostgreSQL before the
   registry, Kafka before Connect), and wait until each answers a real request;
4. raise ``StackUpFailed`` naming every service that exited or timed out, with its log tail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from compose.native.exceptions import HealthCheckFailed, ServiceStartError, StackError, StackUpFailed
from compose.native.install import install_all
from compose.native.paths import StackPaths
from compose.native.services import SERVICES, Context, Service
from compose.native.supervisor import log_tail, running_pid, start, stop
from compose.versions import load_versions
from scv.config.settings import Settings

__all__ = ["ServiceStatus", "Stack"]

log = structlog.get_logger(__name__)

# Stopped first: services that write into others on shutdown (Connect commits offsets to Kafka, the
# registry holds PostgreSQL connections); the services they depend on stop after them.
_STOP_PHASES: tuple[tuple[str, ...], ...] = (
    ("exporter",),
    ("connect", "registry", "prometheus", "cassandra"),
    ("kafka", "postgres"),
)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    healthy: bool
    endpoint: str
    # None when this stack did not start it (not running, or something else answers on its port).
    pid: int | None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "healthy": self.healthy, "endpoint": self.endpoint, "pid": self.pid,
                "detail": self.detail}  # fmt: skip


class Stack:
    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.paths = StackPaths.of(settings.stack)
        self.console = console or Console(stderr=True)

    # --- status -----------------------------------------------------------------------------------

    def _status_of(self, svc: Service) -> ServiceStatus:
        try:
            svc.check(self.settings)
            healthy, detail = True, ""
        except HealthCheckFailed as exc:
            healthy, detail = False, str(exc)
        return ServiceStatus(
            svc.name, healthy, svc.endpoint(self.settings), running_pid(self.paths, svc.name), detail
        )

    def status(self) -> list[ServiceStatus]:
        with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
            return list(pool.map(self._status_of, SERVICES))

    def log_tails(self, names: list[str] | None = None, lines: int = 40) -> dict[str, str]:
        return {
            s.name: log_tail(self.paths, s.name, lines) for s in SERVICES if names is None or s.name in names
        }

    # --- up ---------------------------------------------------------------------------------------

    def up(self) -> list[ServiceStatus]:
        before = {s.name: s for s in self.status()}
        if all(s.healthy for s in before.values()):
            return list(before.values())
        with self._progress() as progress:
            task = progress.add_task("install artifacts (cached after the first run)", total=None)
            bundles = install_all(self.paths, load_versions())
            progress.update(task, description="[green]artifacts installed", completed=1, total=1)
            ctx = Context(self.settings, self.paths, load_versions(), bundles)
            self._start_all(ctx, before, progress)
        return self.status()

    @contextmanager
    def _progress(self) -> Iterator[Progress]:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            yield progress

    def _start_all(self, ctx: Context, before: dict[str, ServiceStatus], progress: Progress) -> None:
        futures: dict[str, Future[None]] = {}
        failures: list[ServiceStartError] = []
        lock = threading.Lock()

        def run(svc: Service, task: TaskID) -> None:
            def show(text: str) -> None:
                progress.update(task, description=f"{svc.name:<10} {text}")

            try:
                for dep in svc.depends_on:
                    show(f"waiting for {dep}")
                    futures[dep].result()
                self._start_one(ctx, svc, before[svc.name], show)
                progress.update(task, description=f"[green]{svc.name:<10} healthy", completed=1, total=1)
            except ServiceStartError as exc:
                progress.update(task, description=f"[red]{svc.name:<10} FAILED: {exc}", completed=1, total=1)
                with lock:
                    failures.append(exc)
                raise
            except StackError as exc:
                err = ServiceStartError(svc.name, str(exc), log_tail(self.paths, svc.name))
                progress.update(task, description=f"[red]{svc.name:<10} FAILED: {exc}", completed=1, total=1)
                with lock:
                    failures.append(err)
                raise err from exc
            except Exception as exc:  # dependency failures arrive as the dependency's exception
                err = ServiceStartError(svc.name, f"not started: {exc}")
                progress.update(task, description=f"[red]{svc.name:<10} not started", completed=1, total=1)
                with lock:
                    failures.append(err)
                raise err from exc

        with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
            # SERVICES lists every service after its dependencies, so each future a service waits on
            # is already in the dict when its thread looks it up.
            for svc in SERVICES:
                task = progress.add_task(f"{svc.name:<10} queued", total=None)
                futures[svc.name] = pool.submit(run, svc, task)
        if failures:
            order = [s.name for s in SERVICES]
            raise StackUpFailed(sorted(failures, key=lambda f: order.index(f.service)))

    def _start_one(
        self, ctx: Context, svc: Service, before: ServiceStatus, show: Callable[[str], None]
    ) -> None:
        if before.healthy:
            return
        pid = running_pid(self.paths, svc.name)
        if pid is None:
            show("preparing")
            launch = svc.prepare(ctx)
            pid = start(self.paths, svc.name, launch)
        show(f"starting (pid {pid})")
        started = time.monotonic()
        deadline = started + self.settings.stack.start_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if running_pid(self.paths, svc.name) is None:
                raise ServiceStartError(
                    svc.name, "process exited during start", log_tail(self.paths, svc.name)
                )
            try:
                svc.check(self.settings)
                log.info("service_healthy", service=svc.name, seconds=round(time.monotonic() - started, 1))
                return
            except HealthCheckFailed as exc:
                last = str(exc)
            show(f"starting (pid {pid}, {time.monotonic() - started:.0f}s): {last[:70]}")
            time.sleep(1.0)
        raise ServiceStartError(
            svc.name,
            f"not healthy after {self.settings.stack.start_timeout_s:.0f}s: {last}",
            log_tail(self.paths, svc.name),
        )

    # --- down -------------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop what `up` started (pid files only); returns the names of the services stopped."""
        stopped: list[str] = []
        for phase in _STOP_PHASES:
            with ThreadPoolExecutor(max_workers=len(phase)) as pool:
                results = pool.map(lambda name: (name, stop(self.paths, name)), phase)
                stopped += [name for name, was_running in results if was_running]
        return stopped
