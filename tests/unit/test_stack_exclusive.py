"""Exclusive use of the local stack: a second test session or benchmark waits for the first."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from compose.native.exceptions import StackBusy
from compose.native.exclusive import exclusive_use
from compose.native.paths import StackPaths


def _paths(tmp_path: Path) -> StackPaths:
    return StackPaths(tmp_path / "data", tmp_path / "cache")


def test_a_second_run_is_refused_after_its_wait_naming_the_holder(tmp_path: Path) -> None:
    said: list[str] = []
    with (
        exclusive_use(_paths(tmp_path), "a test session", wait_s=5),
        pytest.raises(StackBusy) as refused,
        exclusive_use(_paths(tmp_path), "a benchmark", wait_s=0.1, on_wait=said.append),
    ):
        pytest.fail("two runs held the stack at once")
    assert f"in use by a test session (pid {os.getpid()})" in str(refused.value)
    assert said == [f"waiting for the local stack: in use by a test session (pid {os.getpid()})"]


def test_a_waiting_run_goes_on_once_the_holder_ends(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with exclusive_use(_paths(tmp_path), "a test session", wait_s=5):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    assert held.wait(10)
    said: list[str] = []
    threading.Timer(0.5, release.set).start()
    with exclusive_use(_paths(tmp_path), "a benchmark", wait_s=30, on_wait=said.append):
        assert release.is_set()
        lock = _paths(tmp_path).exclusive_lock.read_text()
        assert lock == f"a benchmark (pid {os.getpid()})"
    holder.join(10)
    assert len(said) == 1


def test_the_stack_is_free_when_no_run_holds_it(tmp_path: Path) -> None:
    with exclusive_use(_paths(tmp_path), "a test session", wait_s=0):
        pass
    with exclusive_use(_paths(tmp_path), "a benchmark", wait_s=0):
        pass
