"""The replicator's settling round of the waiting room (consumer/service.py): one scan per table gives
both the placements and the parked gauge, and a failed round is logged and left to the next period
instead of being retried in the loop, where it used to hold up every batch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from consumer.applier import Settled
from consumer.service import Replicator
from store.exceptions import StoreUnavailable

CARDS = ("core", "public.cards")
RETURNS = ("core", "public.order_returns")


class FakeApplier:
    def __init__(self, outcome: Settled | Exception) -> None:
        self.outcome = outcome
        self.calls: list[list[tuple[str, str]]] = []

    def settle_parked(self, tables: list[tuple[str, str]], limit: int = 1000) -> Settled:
        self.calls.append(list(tables))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def _replicator(applier: FakeApplier) -> Any:
    # Only what the settling round touches; the rest of the replicator is not built.
    replicator: Any = object.__new__(Replicator)
    replicator._catalog = SimpleNamespace(via_tables=lambda: [CARDS, RETURNS])
    replicator._applier = applier
    replicator._config = SimpleNamespace(parked_settle_s=15.0)
    replicator._store = SimpleNamespace(keyspace="scv")
    return replicator


def _parked(source: str, table: str) -> float | None:
    return REGISTRY.get_sample_value("scv_entities_parked", {"source": source, "table": table})


def _settle_failures() -> float:
    return REGISTRY.get_sample_value("scv_errors_total", {"kind": "parked_settle"}) or 0.0


def test_a_settling_round_sets_the_parked_gauge_from_its_own_scan() -> None:
    applier = FakeApplier(Settled(moved=2, waiting={CARDS: 3, RETURNS: 0}))
    _replicator(applier)._settle_parked()
    assert applier.calls == [[CARDS, RETURNS]]
    assert _parked(*CARDS) == 3
    assert _parked(*RETURNS) == 0


def test_a_failed_settling_round_is_counted_and_does_not_raise_or_retry() -> None:
    failure = StoreUnavailable("Scanned over 100001 tombstones during query ... query aborted")
    applier = FakeApplier(failure)
    before = _settle_failures()
    _replicator(applier)._settle_parked()  # returns: the loop goes on to the next batch
    assert len(applier.calls) == 1  # tried once this period, not retried in the loop
    assert _settle_failures() == before + 1
