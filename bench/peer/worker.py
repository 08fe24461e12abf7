"""A second Kafka Connect worker for the peer, run as a local process beside the stack's own.

    with peer_worker(settings, names, plugin_dir, rest_port=8093) as worker:
        worker.connect.put_config(names.connector, config)

It runs the stack's Kafka distribution (the same jars as the stack's Connect) with the stack's worker
configuration made into a separate Connect cluster (bench/peer/connector.py), and a ``plugin.path``
of the peer's folder, the stack's Debezium plugin (for ``ExtractNewRecordState``) and the stack's
Apicurio converter. Its files and log live in a temporary folder; on the way out the worker is
stopped, its internal topics deleted and its log copied to ``log_copy``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.peer.connector import (
    SINK_CLASS,
    UNWRAP_CLASS,
    PeerNames,
    plugin_path_entry,
    render_properties,
    worker_properties,
)
from bench.peer.exceptions import PeerWorkerError
from compose.native import configs
from compose.native.install import BUNDLES, MARKER, bundle_dir
from compose.native.paths import StackPaths
from compose.versions import load_versions
from connectors.connect import ConnectClient
from connectors.render import CONVERTER_CLASS
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin

__all__ = ["PeerWorker", "peer_worker", "stack_bundles"]

# The plugins the peer's connector config names, and the folder each must come from.
REQUIRED_PLUGINS = {
    SINK_CLASS: "the peer's plugin folder (--peer-plugin-dir)",
    UNWRAP_CLASS: "the stack's Debezium bundle",
    CONVERTER_CLASS: "the stack's Apicurio converter bundle",
}
START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class PeerWorker:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def connect(self) -> ConnectClient:
        return ConnectClient(self.url)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def stack_bundles(settings: Settings) -> dict[str, Path]:
    """The installed Maven bundles the peer borrows from the stack (Kafka, Debezium, the converter),
    found where `scv stack up` installed them."""
    paths, versions = StackPaths.of(settings.stack), load_versions()
    wanted = {b.name: b for b in BUNDLES if b.name in ("kafka", "debezium-postgres", "apicurio-converter")}
    found = {name: bundle_dir(paths, versions, bundle) for name, bundle in wanted.items()}
    missing = [f"{name} ({folder})" for name, folder in found.items() if not (folder / MARKER).exists()]
    if missing:
        raise PeerWorkerError(
            f"the stack's bundles {', '.join(missing)} are not installed; run `scv stack up` first"
        )
    return found


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) != 0


def _jvm_options(heap_mb: int, tmp: Path) -> list[str]:
    # The stack's Connect heap and collector (compose/native/services.py), fixed as there: the peer
    # runs with what the stack's own worker gets.
    return [
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxMetaspaceSize=256m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={tmp}",
    ]


def _loaded_plugins(url: str) -> set[str] | None:
    """Classes of every plugin the worker loaded (connectors, transforms, converters); None while its
    REST API is not up yet."""
    try:
        response = httpx.get(f"{url}/connector-plugins", params={"connectorsOnly": "false"}, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {str(p.get("class")) for p in response.json()}


def _wait_ready(worker: PeerWorker) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise PeerWorkerError(
                f"the peer's Connect worker exited with {worker.process.returncode}; its log "
                f"({worker.log}) ends with:\n{worker.log_tail()}"
            )
        loaded = _loaded_plugins(worker.url)
        if loaded is not None:
            missing = [
                f"{cls} (from {origin})" for cls, origin in REQUIRED_PLUGINS.items() if cls not in loaded
            ]
            if missing:
                raise PeerWorkerError(
                    f"the peer's Connect worker did not load {', '.join(missing)}; check that folder "
                    f"(bench/peer/README.md) and the worker's log {worker.log}"
                )
            return
        time.sleep(1.0)
    raise PeerWorkerError(
        f"the peer's Connect worker did not answer on {worker.url} within {START_TIMEOUT_S:.0f} s; "
        f"its log ({worker.log}) ends with:\n{worker.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


@contextlib.contextmanager
def peer_worker(
    settings: Settings,
    names: PeerNames,
    plugin_dir: Path,
    *,
    rest_port: int,
    log_copy: Path | None = None,
) -> Iterator[PeerWorker]:
    """Start the peer's worker, wait until it has loaded every plugin the sink needs, and stop it
    (and delete its internal topics) on the way out."""
    java = shutil.which("java")
    if java is None:
        raise PeerWorkerError("no `java` on PATH; `scv stack up` installs openjdk-17-jre-headless")
    host = settings.stack.host
    if not _port_free(host, rest_port):
        raise PeerWorkerError(f"port {rest_port} on {host} is taken; pass another --peer-rest-port")
    bundles = stack_bundles(settings)
    plugin_path = [
        plugin_path_entry(plugin_dir.resolve()),
        bundles["debezium-postgres"],
        bundles["apicurio-converter"],
    ]
    workdir = Path(tempfile.mkdtemp(prefix=f"{names.worker_group}-"))
    properties = worker_properties(
        configs.connect_properties(settings, plugin_path),
        names,
        host=host,
        rest_port=rest_port,
        plugin_path=plugin_path,
    )
    (workdir / "connect-distributed.properties").write_text(render_properties(properties))
    (workdir / "log4j2.xml").write_text(configs.log4j2_xml())
    log = workdir / "worker.log"
    argv = [
        java,
        *_jvm_options(settings.stack.connect_heap_mb, workdir / "tmp"),
        f"-Dlog4j2.configurationFile={workdir / 'log4j2.xml'}",
        "-cp",
        f"{bundles['kafka']}/*",
        "org.apache.kafka.connect.cli.ConnectDistributed",
        str(workdir / "connect-distributed.properties"),
    ]
    (workdir / "tmp").mkdir()
    with log.open("ab") as out:
        # Its own session, so its own CPU scheduling group, as the replicator's (bench/replicator.py).
        process = subprocess.Popen(
            argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = PeerWorker(process, f"http://{host}:{rest_port}", log)
    try:
        _wait_ready(worker)
        yield worker
    finally:
        _stop(process)
        with KafkaAdmin(settings.kafka.bootstrap_servers) as kafka:
            existing = set(kafka.list_topics())
            kafka.delete_topics([t for t in names.internal_topics if t in existing])
        if log_copy is not None:
            log_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, log_copy)
        shutil.rmtree(workdir, ignore_errors=True)
