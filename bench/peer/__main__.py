"""Run the peer alone on the backlog a `python -m bench.replicator --keep-backlog` run left.

    python -m bench.peer /work/peer/plugins/kafka-connect-scylladb [--tasks 1] [--no-freshness]

Prints the peer's events/s and freshness (no scv figures beside them: `python -m bench.replicator
--peer-plugin-dir PATH` measures both in one run).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from bench.backlog import backlog_topics, end_offsets
from bench.peer import BUILD_HINT, missing_artifacts
from bench.peer.exceptions import PeerError
from bench.peer.run import PeerOptions, run_peer
from scv.config.settings import get_settings

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("plugin_dir", type=Path, help="the unpacked kafka-connect-scylladb plugin folder")
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--rest-port", type=int, default=8093)
    parser.add_argument("--freshness-rate", type=float, default=1000.0)
    parser.add_argument("--freshness-seconds", type=float, default=60.0)
    parser.add_argument("--freshness-warmup", type=float, default=30.0)
    parser.add_argument("--freshness-driver", choices=("pgbench", "python"), default="pgbench")
    parser.add_argument("--no-freshness", dest="freshness", action="store_false")
    args = parser.parse_args()
    missing = missing_artifacts(args.plugin_dir)
    if missing:
        raise SystemExit(f"{args.plugin_dir}: missing {', '.join(missing)}; {BUILD_HINT}")
    settings, console = get_settings(), Console()
    topics = backlog_topics(settings)
    if not topics:
        raise SystemExit("no backlog topics: run `python -m bench.replicator --keep-backlog` first")
    options = PeerOptions(
        tasks=args.tasks,
        rest_port=args.rest_port,
        freshness_rate=args.freshness_rate,
        freshness_seconds=args.freshness_seconds if args.freshness else 0.0,
        warmup_s=args.freshness_warmup,
        driver=args.freshness_driver,
        log_copy=RESULTS / "peer-worker.log",
    )
    try:
        result = run_peer(settings, args.plugin_dir, end_offsets(settings, topics), options, console)
    except PeerError as exc:
        raise SystemExit(f"peer: {exc}") from exc
    console.print_json(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
