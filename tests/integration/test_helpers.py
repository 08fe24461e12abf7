"""The test helpers themselves: a helper that reads metrics must fail when the endpoint is down."""

from __future__ import annotations

import socket

import pytest

from tests.integration.conftest import metric, scrape


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metric_helpers_fail_when_the_endpoint_does_not_answer() -> None:
    port = _closed_port()
    with pytest.raises(pytest.fail.Exception, match="does not answer"):
        scrape(port)
    with pytest.raises(pytest.fail.Exception, match="does not answer"):
        metric(port, "scv_events_dead_lettered_total")
