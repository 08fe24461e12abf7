"""The replicators Prometheus should scrape, as a file_sd targets file kept by the exporter.

    ReplicatorTargets(Path(".../targets/replicator.json")).write(groups)

One target group per consumer group, listing its members that advertise a metrics port
(scv/contracts/discovery.py), labelled ``group``. Written only when it changes, atomically (a temp
file renamed over it), so Prometheus never reads half a file. A replicator that leaves its group
leaves the file with it; one that is a member but does not answer shows as a target that is down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from scv.exporter.facts import GroupFacts

__all__ = ["ReplicatorTargets", "targets_json"]


def targets_json(groups: Iterable[GroupFacts]) -> str:
    entries = [
        {"targets": list(g.replicator_endpoints), "labels": {"group": g.group}}
        for g in sorted(groups, key=lambda g: g.group)
        if g.replicator_endpoints
    ]
    return json.dumps(entries, indent=1) + "\n"


class ReplicatorTargets:
    def __init__(self, path: Path) -> None:
        self._path = path

    def write(self, groups: Iterable[GroupFacts]) -> bool:
        """Rewrite the file if its content differs; True when it did. Compared with the file itself,
        not a remembered copy: `scv stack up` may have reset it meanwhile."""
        text = targets_json(groups)
        try:
            if self._path.read_text(encoding="utf-8") == text:
                return False
        except OSError:
            pass
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self._path)
        return True
