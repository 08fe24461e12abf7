"""Where the native stack keeps things, derived from ``settings.stack`` alone.

data_dir/
  logs/SERVICE.log     stdout+stderr of each service
  run/SERVICE.pid      pid files of what `up` started (and only that)
  SERVICE/             each service's state (PostgreSQL cluster, Kafka log dirs, ...)
  secrets/             files Kafka Connect resolves with ${file:...} (mode 0700)
  exclusive.lock       held by the run using the stack alone (compose/native/exclusive.py)
cache_dir/             installed artifacts (Maven bundles), each with a completion marker
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scv.config.settings import StackSettings

__all__ = ["StackPaths"]


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path
    cache_dir: Path

    @classmethod
    def of(cls, stack: StackSettings) -> StackPaths:
        return cls(data_dir=stack.data_dir, cache_dir=stack.cache_dir)

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run(self) -> Path:
        return self.data_dir / "run"

    @property
    def secrets(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def exclusive_lock(self) -> Path:
        return self.data_dir / "exclusive.lock"

    @property
    def artifacts(self) -> Path:
        return self.cache_dir / "artifacts"

    def state(self, service: str) -> Path:
        return self.data_dir / service

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid(self, service: str) -> Path:
        return self.run / f"{service}.pid"
