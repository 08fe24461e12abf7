"""The replicator's HTTP port: /metrics for Prometheus, /livez and /readyz for orchestrators.

    serve_endpoints("127.0.0.1", 9400, health)     # daemon threads; returns the bound server

/livez and /readyz answer 200 or 503 with the reason as text (consumer/health.py decides), and the
same answers are exported as scv_replicator_live and scv_replicator_ready; every other path serves
the metrics, as prometheus_client's own server does. Requests are handled on their
own threads, so a probe is answered while the loop is busy or stuck: that is the point of asking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from consumer.health import Health
from consumer.metrics import REPLICATOR_LIVE, REPLICATOR_READY

__all__ = ["serve_endpoints"]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # One line per scrape or probe on stderr would bury the replicator's own log.
        return None


def _app(health: Health) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app()
    probes: dict[str, Callable[[], tuple[bool, str]]] = {"/livez": health.live, "/readyz": health.ready}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            result: Iterable[bytes] = metrics(environ, start_response)
            return result
        ok, reason = probe()
        body = f"{'ok' if ok else 'not ok'}: {reason}\n".encode()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


def serve_endpoints(host: str, port: int, health: Health) -> WSGIServer:
    # The same answers as gauges, evaluated at each scrape: Prometheus alerts on a replicator that is
    # up but not live (ReplicatorNotLive), which no orchestrator sees outside Kubernetes.
    REPLICATOR_LIVE.set_function(lambda: float(health.live()[0]))
    REPLICATOR_READY.set_function(lambda: float(health.ready()[0]))
    server = make_server(host, port, _app(health), _Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="scv-endpoints", daemon=True).start()
    return server
