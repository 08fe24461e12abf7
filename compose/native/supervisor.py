"""Starts and stops service processes, remembering exactly which ones it started.

    pid = start(paths, "kafka", Launch(argv=[...], env={...}))
    running_pid(paths, "kafka")    # pid, or None when not running (or the pid file is stale)
    stop(paths, "kafka")           # graceful signal, then SIGKILL to the process group

Each service runs in its own session (process group) with stdout and stderr appended to
``logs/SERVICE.log``. The pid file holds the pid and the process's start time from /proc: a pid file
whose pid was reused by an unrelated process after a reboot or crash is recognised as stale, so
`down` can never signal a process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from compose.native.paths import StackPaths

__all__ = ["Launch", "log_tail", "run_as", "running_pid", "start", "stop"]

log = structlog.get_logger(__name__)

# Popen objects of children started by this process: kept so Python does not warn about (or reap) them
# behind our back; a long-lived parent (pytest) still sees exited children as zombies until polled.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    # OS user to run as (PostgreSQL refuses to run as root); None keeps the current user.
    user: str | None = None
    # Signal for a graceful stop: SIGTERM for JVMs (shutdown hooks), SIGINT for PostgreSQL (its
    # "fast" shutdown; SIGTERM would wait for every client to disconnect).
    stop_signal: int = signal.SIGTERM


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if no such live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
        return None
    return fields[19]


def running_pid(paths: StackPaths, service: str) -> int | None:
    pid_file = paths.pid(service)
    try:
        pid_text, started = pid_file.read_text().split()
        pid: int = int(pid_text)
    except (OSError, ValueError):
        return None
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return None
    return pid if _start_time(pid) == started else None


def start(paths: StackPaths, service: str, launch: Launch) -> int:
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.run.mkdir(parents=True, exist_ok=True)
    uid, gid = run_as(launch.user)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCV_", "JAVA_TOOL_OPTIONS"))}
    with paths.log(service).open("ab") as out:
        out.write(f"\n=== scv stack: starting {service}: {' '.join(launch.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=env | dict(launch.env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=[] if uid is not None else None,
        )
    _children[proc.pid] = proc
    started = _start_time(proc.pid) or "0"
    paths.pid(service).write_text(f"{proc.pid} {started}\n")
    (paths.run / f"{service}.stop-signal").write_text(f"{int(launch.stop_signal)}\n")
    log.info("service_started", service=service, pid=proc.pid)
    return proc.pid


def run_as(user: str | None) -> tuple[int | None, int | None]:
    """(uid, gid) to run a child as ``user``; (None, None) keeps ours (and is all a non-root user can do)."""
    if user is None or os.geteuid() != 0:
        return None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    return _start_time(pid) is not None


def stop(paths: StackPaths, service: str, timeout_s: float = 30.0) -> bool:
    """Stop the service if this stack started it; True if a process was stopped."""
    pid = running_pid(paths, service)
    if pid is None:
        paths.pid(service).unlink(missing_ok=True)
        return False
    try:
        sig = int((paths.run / f"{service}.stop-signal").read_text())
    except (OSError, ValueError):
        sig = signal.SIGTERM
    log.info("service_stopping", service=service, pid=pid, signal=signal.Signals(sig).name)
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    # The leader is gone or stuck: anything left in its process group (helpers, a hung JVM) is killed so
    # nothing keeps holding the stack's ports.
    if _alive(pid):
        log.warning("service_killed", service=service, pid=pid, after_s=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.1)
    _children.pop(pid, None)
    paths.pid(service).unlink(missing_ok=True)
    return True


def log_tail(paths: StackPaths, service: str, lines: int = 40) -> str:
    try:
        with paths.log(service).open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {paths.log(service)})"
    return "\n".join(text.splitlines()[-lines:])
