"""Every series the read API exports (GET /metrics). Labels are bounded: the route *template*
(``/customers/{customer_id}``), never a customer id; unmatched paths share one label."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["REQUESTS", "REQUEST_SECONDS", "STALE_ANSWERS", "STORE_ERRORS", "VIEW_AGE"]

REQUESTS = Counter(
    "scv_api_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "scv_api_request_seconds",
    "Time to answer a request, by route template",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
STORE_ERRORS = Counter(
    "scv_api_store_errors_total", "Reads the store could not answer (answered 503)", ["kind"]
)
STALE_ANSWERS = Counter(
    "scv_api_stale_answers_total", "Views answered by fewer replicas than asked for (marked possibly stale)"
)
VIEW_AGE = Histogram(
    "scv_api_view_age_seconds",
    "Age of the views served: time since the view last applied a change for the customer",
    buckets=(1, 5, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400),
)
