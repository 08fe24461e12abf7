"""The two questions `scv status` asks Prometheus: replicator freshness and dead letters, per source.

    prom = PrometheusQueries("http://127.0.0.1:9090", timeout_s=5)
    prom.freshness_p99()       # {'crm': 0.31, ...}  over the last 5 minutes
    prom.dead_letters("15m")   # {'crm.public.customers': 2.0}  per topic

Only what needs history comes from Prometheus (a percentile over a window, growth of a counter); every
other figure of `scv status` is read from its source directly, so the screen works without it.
"""

from __future__ import annotations

import math

import httpx

from compose.alerts import grew_within

__all__ = ["PrometheusQueries", "PrometheusUnavailable"]


class PrometheusUnavailable(Exception):
    """Prometheus did not answer or refused the query; the message says which."""


class PrometheusQueries:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url.rstrip("/")
        self._timeout_s = timeout_s

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        try:
            response = httpx.get(f"{self._url}/api/v1/query", params={"query": expr}, timeout=self._timeout_s)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PrometheusUnavailable(f"{self._url}: {exc}") from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusUnavailable(
                f"{self._url} refused {expr!r}: {body.get('error', response.status_code)}"
            )
        out = []
        for item in body["data"]["result"]:
            value = float(item["value"][1])
            if not math.isnan(value):  # NaN: no traffic in the window, not a measurement
                out.append((dict(item["metric"]), value))
        return out

    def freshness_p99(self, window: str = "5m") -> dict[str, float]:
        expr = f"histogram_quantile(0.99, sum by (source, le) (rate(scv_freshness_seconds_bucket[{window}])))"
        return {labels["source"]: value for labels, value in self.vector(expr) if "source" in labels}

    def dead_letters(self, window: str) -> dict[str, float]:
        expr = grew_within("scv_events_dead_lettered_total", window, "topic")
        return {labels["topic"]: value for labels, value in self.vector(expr) if "topic" in labels}
