"""The stack the service runs against, in two shapes that share one set of pinned versions.

- ``compose/versions.yaml``: every version, once (``compose.versions`` loads it).
- ``compose/native``: the stack as local processes (``scv stack up``), for development and CI.
- ``compose/docker-compose.yml``: the production-shaped equivalent with the official images.
"""
