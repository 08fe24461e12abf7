"""`scv consume --processes N` restarts a crashed worker with a growing backoff, counts its restarts,
and never restarts one it was asked to stop (fake processes: the rules, not multiprocessing)."""

from __future__ import annotations

import signal
import time

from consumer.supervisor import REJOIN_EXIT_CODE, Supervisor, WorkerSlot, _Slot
from scv.config.settings import ConsumerSettings


class FakeProcess:
    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode
        self.pid = 4242

    def join(self) -> None:
        return None


def _worker(_slot: WorkerSlot) -> None:
    return None


def _supervisor() -> Supervisor:
    config = ConsumerSettings(
        worker_restart_initial_s=1.0, worker_restart_max_s=8.0, worker_healthy_after_s=60.0
    )
    return Supervisor(2, _worker, config)


def _crash(supervisor: Supervisor, slot: _Slot, code: int, ran_s: float) -> float:
    slot.process = FakeProcess(code)  # type: ignore[assignment]
    slot.started_at = time.monotonic() - ran_s
    assert supervisor._exited(slot) is False
    return slot.start_at - time.monotonic()


def test_a_crashed_worker_is_restarted_with_a_doubling_backoff_up_to_the_maximum() -> None:
    supervisor, slot = _supervisor(), _Slot(0)
    delays = [_crash(supervisor, slot, -signal.SIGKILL, ran_s=1.0) for _ in range(5)]
    assert [round(d) for d in delays] == [1, 2, 4, 8, 8]
    assert slot.restarts == 5
    assert slot.process is None


def test_the_backoff_starts_over_after_a_worker_ran_healthy() -> None:
    supervisor, slot = _supervisor(), _Slot(0)
    for _ in range(3):
        _crash(supervisor, slot, 1, ran_s=1.0)
    assert round(_crash(supervisor, slot, 1, ran_s=120.0)) == 1


def test_a_worker_asked_to_stop_is_not_restarted() -> None:
    supervisor, slot = _supervisor(), _Slot(1)
    supervisor._stopping = True
    slot.process = FakeProcess(0)  # type: ignore[assignment]
    assert supervisor._exited(slot) is False
    assert slot.restarts == 0
    slot.process = FakeProcess(1)  # type: ignore[assignment]
    assert supervisor._exited(slot) is True  # a worker that fails to drain fails the command


def test_each_slot_keeps_its_metrics_port_and_static_membership() -> None:
    supervisor = _supervisor()
    config = ConsumerSettings()
    assert supervisor._instance_prefix.startswith(f"{config.group_id}-")
    assert supervisor._instance_prefix.endswith(f"-{config.metrics_port}")


def test_a_worker_whose_consumer_was_fenced_rejoins_at_once_without_counting_a_crash() -> None:
    supervisor, slot = _supervisor(), _Slot(0)
    _crash(supervisor, slot, 1, ran_s=1.0)  # one real crash first: the next one would wait 2 s
    assert round(_crash(supervisor, slot, REJOIN_EXIT_CODE, ran_s=1.0)) == 0
    assert slot.restarts == 2
    assert slot.crashes_in_a_row == 1  # the backoff of real crashes is not advanced
