"""Shared test setup: integration tests run against the real local stack, started here when needed.

Everything under tests/integration is marked ``integration``, everything under tests/faults ``faults``,
automatically; the fault suite runs after every other test, whatever the command line's order, because
it stops and restarts services of the shared stack. The session fixture
``stack`` brings the stack up through the same API as ``scv stack up`` when any service does not answer,
and fails (never skips) with the services' log tails when it cannot: a skipped integration test would
pass CI without having tested anything.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

# Every test session writes its own keyspace: registrations (and so what the tests' replicators
# consume) are only the test sources, never the demo's or a benchmark's million-event backlog that
# may sit in the same local stack. Set before any settings are read; subprocesses inherit it.
os.environ.setdefault("SCV_STORE__KEYSPACE", f"scv_test_{uuid.uuid4().hex[:8]}")

from collections.abc import Iterator

import pytest
from cassandra.cluster import Session
from rich.console import Console

from compose.native.exceptions import StackBusy, StackError, StackUpFailed
from compose.native.exclusive import exclusive_use
from compose.native.paths import StackPaths
from compose.native.stack import Stack
from scv.config.settings import Settings, get_settings
from store.migrate import migrate
from store.session import connect, open_session
from tests.leftovers import StackInventory, sweep

_INTEGRATION_DIR = Path(__file__).parent / "integration"
_FAULTS_DIR = Path(__file__).parent / "faults"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
        if _FAULTS_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.faults)
    # A stable sort: every other test keeps its order, the fault suite's cases come last.
    items.sort(key=lambda item: _FAULTS_DIR in Path(item.path).parents)


@pytest.fixture(scope="session")
def store_session(stack: Settings) -> Iterator[Session]:
    """One CQL session for the test session; the test keyspace is dropped at the end."""
    cluster, session = connect(stack.store)
    yield session
    session.execute(f"DROP KEYSPACE IF EXISTS {stack.store.keyspace}", timeout=120)
    cluster.shutdown()


@pytest.fixture(scope="session")
def stack(pytestconfig: pytest.Config) -> Iterator[Settings]:
    """The local stack, up, healthy and this session's alone (compose/native/exclusive.py); at the end
    of the session, what the session's tests left on it (topics, consumer groups, connectors, slots)
    is removed (tests/leftovers.py says why)."""
    settings = get_settings()
    console = Console(stderr=True)
    try:
        with exclusive_use(
            StackPaths.of(settings.stack), "a test session", on_wait=lambda m: _say(pytestconfig, m)
        ):
            yield from _stack_up(settings, console)
    except StackBusy as exc:
        pytest.fail(str(exc), pytrace=False)


def _say(config: pytest.Config, message: str) -> None:
    """Past pytest's capture: whoever runs the suite sees why it has not started yet."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(message, flush=True)


def _stack_up(settings: Settings, console: Console) -> Iterator[Settings]:
    runner = Stack(settings, console=console)
    try:
        statuses = runner.up()
    except StackUpFailed as exc:
        report = "\n\n".join(f"--- {f.service}: {f}\n{f.log_tail}" for f in exc.failures)
        pytest.fail(f"the local stack did not come up:\n{report}", pytrace=False)
    except StackError as exc:
        pytest.fail(f"the local stack did not come up: {exc}", pytrace=False)
    unhealthy = [s for s in statuses if not s.healthy]
    if unhealthy:
        tails = runner.log_tails([s.name for s in unhealthy])
        report = "\n\n".join(f"--- {s.name}: {s.detail}\n{tails[s.name]}" for s in unhealthy)
        pytest.fail(f"stack services unhealthy after up:\n{report}", pytrace=False)
    with open_session(settings.store) as session:
        migrate(session, settings.store.keyspace, settings.store.replication_factor, settings.store.local_dc)
    before = StackInventory.take(settings)
    yield settings
    removed = sweep(settings, before)
    print(f"\ntest session left on the stack, now removed: {', '.join(removed) or 'nothing'}")
