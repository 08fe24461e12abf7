"""`scv verify` re-checks what differs only once the replicator's recorded settling work is done
(scv/verify/reconcile.py ``wait_intents_done``): a move a killed worker left half done is finished by
the next settling round, and reporting it meanwhile would be a false finding."""

from __future__ import annotations

from scv.verify.reconcile import wait_intents_done
from store.intents import PendingIntent, SettleWork

LEFT = PendingIntent("worker-a", 0, SettleWork(partitions=frozenset({"7"})), 1)


class Intents:
    """The replicator's records, done by its settling round after ``rounds`` reads."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.reads = 0

    def pending(self, written_before_us: int) -> list[PendingIntent]:
        self.reads += 1
        assert written_before_us > LEFT.written_us  # every record, however recent
        return [LEFT] if self.reads <= self.rounds else []


def test_verify_waits_until_the_recorded_settling_work_is_done() -> None:
    intents = Intents(rounds=3)
    assert wait_intents_done(intents, timeout_s=10, poll_s=0.001)
    assert intents.reads == 4


def test_verify_stops_waiting_at_its_timeout_and_says_the_work_is_still_pending() -> None:
    intents = Intents(rounds=1_000_000)
    assert not wait_intents_done(intents, timeout_s=0.05, poll_s=0.01)
    assert 1 < intents.reads < 1_000_000


def test_nothing_recorded_costs_one_read() -> None:
    intents = Intents(rounds=0)
    assert wait_intents_done(intents, timeout_s=10)
    assert intents.reads == 1
