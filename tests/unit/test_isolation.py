"""A batch the store refuses for good is bisected until the culprits stand alone: they are refused
with the store's error, everything else is applied, in the batch's order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from consumer.exceptions import StoreRefused, Unexpected
from consumer.isolation import Isolator
from consumer.planner import Located, Outcome
from consumer.retry import ShutdownRequested
from store.exceptions import StoreRejected, StoreUnavailable
from tests.unit.test_planner import ACCOUNTS, event, located


def _changes(n: int) -> list[Located]:
    return [
        located(ACCOUNTS, event(ACCOUNTS, "c", {"account_id": i}, {"account_id": i, "customer_id": f"c{i}"}))
        for i in range(n)
    ]


class FakeApply:
    """Refuses any call holding a poisoned change; records what was applied, in order."""

    def __init__(self, poisoned: set[int], error: Callable[[], Exception]) -> None:
        self.poisoned = poisoned
        self.error = error
        self.applied: list[int] = []
        self.calls = 0

    def __call__(self, changes: Sequence[Located]) -> list[Outcome]:
        self.calls += 1
        ids = [int(c.event.key["account_id"]) for c in changes if c.event.key]
        if self.poisoned & set(ids):
            raise self.error()
        self.applied.extend(ids)
        return ["applied"] * len(changes)


def _no_retry(action: Callable[[], list[Outcome]]) -> list[Outcome]:
    return action()


def test_the_refused_changes_are_isolated_and_the_rest_applied_in_order() -> None:
    apply = FakeApply({3, 11}, lambda: StoreRejected("empty_key", "customer_view: Key may not be empty"))
    result = Isolator(apply, _no_retry).apply(_changes(16))
    assert sorted(result.refused) == [3, 11]
    assert all(isinstance(p, StoreRefused) for p in result.refused.values())
    assert "Key may not be empty" in str(result.refused[3])
    assert apply.applied == [i for i in range(16) if i not in (3, 11)]
    assert [o is None for o in result.outcomes] == [i in (3, 11) for i in range(16)]
    assert apply.calls <= 2 * 2 * 4 + 1  # about 2*log2(n) attempts per culprit


def test_a_batch_the_store_accepts_is_applied_in_one_call() -> None:
    apply = FakeApply(set(), lambda: StoreRejected("x", "y"))
    result = Isolator(apply, _no_retry).apply(_changes(8))
    assert apply.calls == 1
    assert result.refused == {}


def test_anything_unexpected_while_planning_or_writing_is_isolated_too() -> None:
    apply = FakeApply({5}, lambda: TypeError("cannot store a value of type dict"))
    result = Isolator(apply, _no_retry).apply(_changes(8))
    assert isinstance(result.refused[5], Unexpected)
    assert "TypeError: cannot store a value of type dict" in str(result.refused[5])


def test_an_outage_is_retried_not_isolated() -> None:
    failures = iter([StoreUnavailable("down"), StoreUnavailable("down")])

    def flaky(changes: Sequence[Located]) -> list[Outcome]:
        error = next(failures, None)
        if error is not None:
            raise error
        return ["applied"] * len(changes)

    def retry(action: Callable[[], list[Outcome]]) -> list[Outcome]:
        while True:
            try:
                return action()
            except StoreUnavailable:
                continue

    result = Isolator(flaky, retry).apply(_changes(4))
    assert result.refused == {}
    assert result.outcomes == ["applied"] * 4


def test_shutdown_during_an_outage_is_not_mistaken_for_a_refusal() -> None:
    def stopping(_action: Callable[[], list[Outcome]]) -> list[Outcome]:
        raise ShutdownRequested("store down and SIGTERM")

    with pytest.raises(ShutdownRequested):
        Isolator(FakeApply(set(), Exception), stopping).apply(_changes(4))
