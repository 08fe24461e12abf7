"""The HTTP read API (`scv serve`): the read client behind FastAPI, with bearer tokens, ETags and
Prometheus metrics. Floor "services": above the read client, below the CLI.

- ``config``: the service's settings (``store``, ``read``, ``api``) -> the client's and the API's;
- ``auth``: bearer tokens, compared in constant time, optionally limited to sections;
- ``app``: the routes (``create_app``); ``metrics``: every series the API exports;
- ``server``: uvicorn, for `scv serve`.
"""
