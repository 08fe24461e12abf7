"""How a replicator is found by whoever scrapes it: its metrics port travels in its Kafka client.id.

    replicator_client_id(9400)                    # 'scv-replicator-9400'
    metrics_port_of("scv-replicator-9400")        # 9400
    metrics_port_of("rdkafka")                    # None

The consumer group already knows every live replicator (its members, with the address the broker
sees); the client.id adds the one thing it lacks, the port of /metrics. The pipeline exporter reads
both and writes a Prometheus file_sd target per member, so the native stack's Prometheus scrapes
exactly the replicators that run, wherever they bind (containers and Kubernetes use their own
discovery instead).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REPLICATOR_CLIENT_PREFIX", "metrics_port_of", "replicator_client_id"]

REPLICATOR_CLIENT_PREFIX: Final = "scv-replicator"
_CLIENT_ID: Final = re.compile(rf"^{REPLICATOR_CLIENT_PREFIX}-(\d{{1,5}})$")


def replicator_client_id(metrics_port: int) -> str:
    """The client.id of a replicator serving /metrics on ``metrics_port`` (0: not served)."""
    return f"{REPLICATOR_CLIENT_PREFIX}-{metrics_port}" if metrics_port else REPLICATOR_CLIENT_PREFIX


def metrics_port_of(client_id: str) -> int | None:
    match = _CLIENT_ID.match(client_id)
    if match is None:
        return None
    port = int(match.group(1))
    return port if 0 < port < 65536 else None
