"""`scv serve`: the read API under uvicorn (httptools + uvloop when installed, which they are).

    scv serve                         # 127.0.0.1:8000, settings from SCV_API__* / scv.yaml
    SCV_API__HOST=0.0.0.0 scv serve   # in a container

One process serves many concurrent requests (asyncio; the driver's I/O runs on its own thread);
scale out with more processes or pods behind a load balancer, which then must share
``read.page_token_key`` so a page token works on any of them.
"""

from __future__ import annotations

import structlog
import uvicorn

from scv.api.app import ApiConfig, create_app
from scv.config.settings import Settings

__all__ = ["serve"]

log = structlog.get_logger(__name__)


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT. Raises AuthConfigurationError / ClientConfigurationError first."""
    config = ApiConfig.from_settings(settings)
    if config.tokens.anonymous:
        log.warning("api_anonymous", detail="no token configured: every section is served to anyone")
    if not settings.read.page_token_key.get_secret_value() and not settings.read.page_token_key_file:
        log.warning(
            "api_page_token_key_random",
            detail="page tokens only work against this process; set SCV_READ__PAGE_TOKEN_KEY_FILE",
        )
    api = settings.api
    log.info(
        "api_starting",
        host=api.host,
        port=api.port,
        principals=config.tokens.names,
        keyspace=config.client.keyspace,
    )
    uvicorn.run(
        create_app(config),
        host=api.host,
        port=api.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
